// The status bar: who is signed in, the VM's last known state and when it
// was read, whether the devvm, the Proxmox host and the LLM answered
// recently, and the state of the event stream.
import * as api from './api.js';
import {el, fmtAgo} from './render.js';

export class Status {
	constructor(app) {
		this.app = app;
		this.$ = id => document.getElementById(id);
		this.vmState = null;
		this.info = {};
		this.words = {};
		this.vmAt = 0;
		setInterval(() => this.renderVm(), 5000);
	}

	async start() {
		const btn = this.$('st-deps');
		btn.addEventListener('click', () => {
			const open = btn.getAttribute('aria-expanded') !== 'true';
			btn.setAttribute('aria-expanded', String(open));
			this.$('deps-info').hidden = !open;
			if (open)
				this.deps();
		});
		this.whoami();
		this.deps();
		setInterval(() => this.deps(), 30000);
		document.addEventListener('visibilitychange', () => {
			if (!document.hidden)
				this.deps();
		});
	}

	async whoami() {
		try {
			const doc = await api.get('api/whoami', 10000);
			const who = doc && (doc.user || doc.who);
			this.$('st-user').textContent = who ? `signed in: ${who}` : 'signed in';
		} catch (e) {
			this.$('st-user').textContent = 'signed in: ?';
			this.$('st-user').title = `who am I: ${e.message}`;
		}
	}

	// GET /api/health/deps: {peers: {devvm, pve, llm: {state, recent,
	// last_ok, last_failure, error, probing, ...}}, vm: {state, read_at}}.
	async deps() {
		clearTimeout(this.again);
		let doc;
		try {
			doc = await api.get('api/health/deps', 15000);
		} catch (e) {
			for (const k of ['devvm', 'pve', 'llm'])
				this.dep(k, null, e.status === 404 ? 'not reported by this server' : e.message);
			return;
		}
		const peers = (doc && doc.peers) || {};
		let probing = false;
		this.app.chat.noLlm(!!(peers.llm && peers.llm.state === 'offline'));
		for (const k of ['devvm', 'pve', 'llm']) {
			this.dep(k, peers[k]);
			probing = probing || !!(peers[k] && peers[k].probing);
		}
		if (probing) // a probe runs: its answer in a moment
			this.again = setTimeout(() => this.deps(), 2000);
		const vm = doc && doc.vm;
		if (vm && vm.state)
			this.vm(vm.state, vm.read_at ? Date.parse(vm.read_at) : 0);
	}

	dep(k, d, why) {
		const node = this.$(`dep-${k}`);
		const name = {devvm: 'devvm', pve: 'PVE', llm: 'LLM'}[k];
		let state = 'unknown';
		let title = why || 'not known yet';
		if (d && typeof d === 'object') {
			state = d.state === 'ok' ? (d.recent === false ? 'stale' : 'ok') : d.state === 'failing' ? 'bad' : d.state === 'offline' ? 'off' : 'unknown';
			const parts = [];
			if (d.state === 'offline')
				parts.push('no LLM configured: the offline playbook answers');
			if (d.last_ok)
				parts.push(`answered ${fmtAgo(d.last_ok)}${d.detail ? ` (${d.detail})` : ''}`);
			if (d.last_failure)
				parts.push(`failed ${fmtAgo(d.last_failure)}${d.error ? `: ${d.error}` : ''}`);
			if (d.probing)
				parts.push('asking now…');
			title = parts.join('; ') || 'not heard from yet';
		}
		const word = {ok: 'up', stale: 'up, not heard from recently', bad: 'down', off: 'offline playbook', unknown: 'unknown'}[state];
		node.dataset.state = state;
		this.info[k] = `${name}: ${word}. ${title}`;
		this.words = {...this.words, [k]: `${name} ${word}`};
		this.$('st-deps').setAttribute('aria-label', `devvm PVE LLM: ${Object.values(this.words).join(', ')}`);
		this.$('st-deps').title = Object.values(this.info).join('\n');
		this.$('deps-info').replaceChildren(...Object.entries(this.info).map(([key, t]) =>
			el('li', {class: 'dep-line', dataset: {state: this.$(`dep-${key}`).dataset.state}, text: t})));
	}

	vm(state, at) {
		if (!state)
			return;
		if (at && at < this.vmAt)
			return;
		this.vmState = state;
		this.vmAt = at || Date.now();
		this.renderVm();
	}

	renderVm() {
		const n = this.$('st-vm');
		if (!this.vmState) {
			n.textContent = 'VM: ?';
			return;
		}
		n.textContent = `VM: ${this.vmState} · ${fmtAgo(this.vmAt)}`;
		n.dataset.state = this.vmState;
	}

	conn(state, why) {
		const n = this.$('st-conn');
		n.dataset.state = state;
		n.textContent = {connecting: 'connecting…', live: 'live', retrying: 'reconnecting…', closed: 'not following'}[state] || state;
		n.title = why || '';
	}

	note(what, msg) {
		this.$('st-conn').title = `${what}: ${msg}`;
	}
}
