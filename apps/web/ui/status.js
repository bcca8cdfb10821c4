// The status bar: who is signed in, the VM's last known state and when it
// was read, whether the devvm, the Proxmox host and the LLM answered
// recently, and the state of the event stream.
import * as api from './api.js';
import {fmtAgo} from './render.js';

export class Status {
	constructor(app) {
		this.app = app;
		this.$ = id => document.getElementById(id);
		this.vmState = null;
		this.vmAt = 0;
		setInterval(() => this.renderVm(), 5000);
	}

	async start() {
		this.whoami();
		this.deps();
		setInterval(() => this.deps(), 30000);
	}

	async whoami() {
		try {
			const doc = await api.get('api/whoami', 10000);
			const who = doc && (doc.user || doc.who);
			this.$('st-user').textContent = who ? `signed in: ${who}` : 'signed in';
			if (doc && doc.vm && doc.vm.status)
				this.vm(doc.vm.status, doc.vm.at ? Date.parse(doc.vm.at) : 0);
		} catch (e) {
			this.$('st-user').textContent = 'signed in: ?';
			this.$('st-user').title = `who am I: ${e.message}`;
		}
	}

	async deps() {
		let doc;
		try {
			doc = await api.get('api/health/deps', 15000);
		} catch (e) {
			for (const k of ['devvm', 'pve', 'llm'])
				this.dep(k, null, e.status === 404 ? 'not reported by this server' : e.message);
			return;
		}
		for (const k of ['devvm', 'pve', 'llm'])
			this.dep(k, doc ? doc[k] : null);
		const pve = doc && doc.pve;
		if (pve && pve.vm_status)
			this.vm(pve.vm_status, pve.vm_status_at ? Date.parse(pve.vm_status_at) : Date.now());
	}

	// A peer: {ok: bool, at: time, error: text} (or a bare bool).
	dep(k, d, why) {
		const node = this.$(`dep-${k}`);
		const name = {devvm: 'devvm', pve: 'PVE', llm: 'LLM'}[k];
		let state = 'unknown';
		let title = why || 'not known yet';
		if (typeof d === 'boolean')
			state = d ? 'ok' : 'bad';
		else if (d && typeof d === 'object') {
			state = d.ok === true ? 'ok' : d.ok === false ? 'bad' : 'unknown';
			const at = d.at || d.checked || d.last;
			title = `${d.ok === true ? 'answered' : d.ok === false ? 'did not answer' : 'not asked yet'}${at ? ` ${fmtAgo(at)}` : ''}${d.error ? `: ${d.error}` : ''}`;
		}
		node.dataset.state = state;
		node.title = `${name}: ${title}`;
		node.setAttribute('aria-label', `${name}: ${state === 'ok' ? 'up' : state === 'bad' ? 'down' : 'unknown'}`);
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
