// The chat: session list, the event log as it streams, tool chips,
// approval cards, the composer, Stop and the presets.
import * as api from './api.js';
import {el, fmtAgo, fmtMs, fmtTime, outputBlock, renderText} from './render.js';
import {Follower} from './sse.js';
import {verbText} from './verbs.js';

const PRESETS = {
	triage: 'Triage the devvm: is it up, what is failing, and what do you recommend? Diagnose before any power action.',
	oom: 'Memory and OOM: check memory pressure, the biggest processes and the kernel log for oom-kill on the devvm.',
	disk: 'Disk: check space and inodes on every filesystem of the devvm and find what holds the space.',
	services: 'Services: list the failed or restarting systemd units on the devvm and tell me why they fail.',
	qemu: 'Is the devvm\'s QEMU wedged? Take forensics on the Proxmox host and give me the verdict before any power action.',
};
const APPROVAL_TIMEOUT_S = 600; // BG_AGENT_APPROVAL_TIMEOUT_S: only when an event does not say (timeout_s)
const STORE_KEY = 'breakglass.session';

export class Chat {
	constructor(app) {
		this.app = app;
		this.$ = id => document.getElementById(id);
		this.sid = null;
		this.follower = null;
		this.running = false;
		this.sessions = [];
		this.tick = setInterval(() => this.countdown(), 1000);
		this.bind();
	}

	bind() {
		this.$('composer').addEventListener('submit', e => {
			e.preventDefault();
			this.send(this.$('prompt').value);
		});
		this.$('prompt').addEventListener('keydown', e => {
			if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
				e.preventDefault();
				this.send(this.$('prompt').value);
			}
		});
		this.$('stop').addEventListener('click', () => this.stop());
		this.$('new-session').addEventListener('click', () => this.newSession());
		for (const b of document.querySelectorAll('[data-preset]'))
			b.addEventListener('click', () => this.send(PRESETS[b.dataset.preset]));
		window.addEventListener('hashchange', () => {
			const id = fromHash();
			if (id && id !== this.sid)
				this.open(id);
		});
		window.addEventListener('online', () => this.follower && this.follower.poke());
		document.addEventListener('visibilitychange', () => {
			if (!document.hidden && this.follower)
				this.follower.poke();
		});
	}

	async start() {
		// Wide: the list beside the conversation; narrow: folded.
		const wide = window.matchMedia('(min-width: 1000px)');
		this.$('sessions').open = wide.matches;
		wide.addEventListener('change', () => {
			this.$('sessions').open = wide.matches;
		});
		// The conversation stays at its end when it was there (new text,
		// the keyboard opening, a rotation).
		const log = this.$('log');
		this.pinned = true;
		log.addEventListener('scroll', () => {
			this.pinned = log.scrollHeight - log.scrollTop - log.clientHeight < 120;
		});
		new ResizeObserver(() => {
			if (this.pinned)
				log.scrollTop = log.scrollHeight;
		}).observe(log);
		let id = fromHash();
		if (!id) {
			try {
				id = localStorage.getItem(STORE_KEY);
			} catch {
				id = null;
			}
		}
		await this.loadSessions();
		if (id && !/^[0-9a-f]{32}$/.test(id))
			id = null;
		if (!id && this.sessions.length)
			id = this.sessions[0].id;
		if (id)
			this.open(id);
		else
			this.empty();
		setInterval(() => this.loadSessions(), 30000);
	}

	empty() {
		this.$('log').replaceChildren(
			el('p', {class: 'hint', text: 'No session yet. Ask a question or tap a preset: a session starts with it.'}),
			el('p', {class: 'hint', text: 'To act on the VM yourself, with no AI in the path: the VM tab (status, forensics, then the power verbs).'}));
		this.setRunning(false);
	}

	async loadSessions() {
		try {
			const doc = await api.get('api/sessions', 15000);
			this.sessions = Array.isArray(doc && doc.sessions) ? doc.sessions : [];
		} catch (e) {
			this.app.status.note('sessions', e.message);
			return;
		}
		this.renderSessions();
	}

	renderSessions() {
		const list = this.$('sess-list');
		list.replaceChildren();
		for (const s of this.sessions) {
			const cur = s.id === this.sid;
			const b = el('button', {type: 'button', class: 'sess', 'aria-current': cur ? 'true' : null},
				el('span', {class: 'sess-title', text: s.title || '(no prompt yet)'}),
				el('span', {class: 'sess-meta'},
					el('span', {class: s.busy ? 'pill run' : 'pill', text: s.busy ? 'running' : 'idle'}),
					' ', fmtAgo(s.updated || s.created)));
			b.addEventListener('click', () => {
				this.open(s.id);
				if (!window.matchMedia('(min-width: 1000px)').matches)
					this.$('sessions').open = false;
				this.$('prompt').focus();
			});
			list.append(el('li', null, b));
		}
		const cur = this.sessions.find(s => s.id === this.sid);
		this.$('sess-summary').textContent = cur ? `Session: ${cur.title || 'new'}` : `Sessions (${this.sessions.length})`;
	}

	async newSession() {
		try {
			const doc = await api.post('api/session', {}, 15000);
			this.open(doc.session_id);
			await this.loadSessions();
			this.$('prompt').focus();
			return doc.session_id;
		} catch (e) {
			this.banner('error', `Could not start a session: ${e.message}`);
			return null;
		}
	}

	open(id) {
		if (this.follower)
			this.follower.stop();
		this.sid = id;
		try {
			localStorage.setItem(STORE_KEY, id);
		} catch {
			/* private mode: the fragment still holds it */
		}
		if (fromHash() !== id)
			history.replaceState(null, '', `#s=${id}`);
		this.reset();
		this.renderSessions();
		this.follower = new Follower(id, {
			onEvent: ev => this.event(ev),
			onCaughtUp: () => this.caughtUp(),
			onState: (st, why) => {
				this.app.status.conn(st, why);
				if (st === 'closed' && why === 'no such session')
					this.gone(id);
			},
		}).start();
	}

	// The server does not know the session (pruned by [web] max_sessions,
	// or its file went away): say so, and do not reopen it next time.
	gone(id) {
		try {
			if (localStorage.getItem(STORE_KEY) === id)
				localStorage.removeItem(STORE_KEY);
		} catch {
			/* nothing stored */
		}
		this.banner('error', 'This session is not on the server any more (pruned, or its log is gone). Start a new one or pick another.');
		this.loadSessions();
	}

	reset() {
		this.$('log').replaceChildren();
		this.$('banners').replaceChildren(...(this.noLlmBanner ? [this.noLlmBanner] : []));
		this.msg = null; // the assistant message being streamed
		this.tools = new Map(); // tool_use_id -> chip
		this.cards = new Map(); // nonce -> approval card
		this.turnEl = null;
		this.offline = null;
		this.setRunning(false);
	}

	// No LLM configured ([agent] provider = offline): every answer is the
	// playbook's, said once above the conversation.
	noLlm(on) {
		if (on && !this.noLlmBanner)
			this.noLlmBanner = this.banner('offline', 'No LLM is configured: the offline playbook (fixed rules, no AI) answers every turn.');
		else if (!on && this.noLlmBanner) {
			this.noLlmBanner.remove();
			this.noLlmBanner = null;
		}
	}

	caughtUp() {
		this.scroll(true);
	}

	setRunning(on) {
		this.running = on;
		this.$('send').disabled = on;
		this.$('stop').disabled = !on;
		for (const b of document.querySelectorAll('[data-preset]'))
			b.disabled = on;
		this.$('composer').dataset.running = on ? '1' : '';
	}

	async send(text) {
		text = String(text || '').trim();
		if (!text || this.running)
			return;
		let sid = this.sid;
		if (!sid && !(sid = await this.newSession()))
			return;
		this.setRunning(true);
		try {
			await api.post(`api/session/${sid}/prompt`, {prompt: text}, 15000);
			this.$('prompt').value = '';
		} catch (e) {
			this.setRunning(e.status === 409);
			this.banner('error', e.status === 409 ? 'A turn is already running in this session: wait for it or Stop it.' : `Not sent: ${e.message}`);
		}
	}

	async stop() {
		if (!this.sid)
			return;
		this.$('stop').disabled = true;
		try {
			await api.post(`api/session/${this.sid}/cancel`, {}, 15000);
		} catch (e) {
			this.$('stop').disabled = false;
			this.banner('error', `Stop failed: ${e.message}`);
		}
	}

	banner(kind, text, action) {
		const b = el('div', {class: `banner ${kind}`, role: kind === 'error' || kind === 'approval' ? 'alert' : 'status'},
			el('span', {text}));
		if (action) {
			const go = el('button', {type: 'button', class: 'btn small', text: action.label});
			go.addEventListener('click', action.run);
			b.append(go);
		}
		const x = el('button', {type: 'button', class: 'btn small', 'aria-label': 'Dismiss', text: '×'});
		x.addEventListener('click', () => b.remove());
		b.append(x);
		this.$('banners').append(b);
		return b;
	}

	scroll(force) {
		const log = this.$('log');
		if (force || this.pinned !== false)
			log.scrollTop = log.scrollHeight;
	}

	add(node, ev) {
		node.dataset.id = String(ev.id);
		this.$('log').append(node);
		this.scroll(false);
		return node;
	}

	// One event of the log. Each id arrives once (sse.js drops repeats).
	event(ev) {
		const k = ev.kind;
		if (k !== 'text')
			this.msg = null;
		switch (k) {
		case 'user':
			this.setRunning(true);
			// The banner is about one turn: a new turn asks the LLM again.
			if (this.offline) {
				this.offline.remove();
				this.offline = null;
			}
			this.add(el('div', {class: 'msg user'},
				el('div', {class: 'who', text: `${ev.by || 'you'} · ${fmtTime(ev.ts)}`}),
				el('div', {class: 'body', text: ev.text || ''})), ev);
			this.bumpSession(ev);
			break;
		case 'text':
			if (!this.msg) {
				const body = el('div', {class: 'body'});
				const node = el('div', {class: 'msg agent'}, el('div', {class: 'who', text: `agent · ${fmtTime(ev.ts)}`}), body);
				this.msg = {node, body, text: ''};
				this.add(node, ev);
			}
			this.msg.text += ev.text || '';
			renderText(this.msg.body, this.msg.text);
			this.scroll(false);
			break;
		case 'tool':
			this.toolChip(ev);
			break;
		case 'tool_result':
			this.toolResult(ev);
			break;
		case 'approval_required':
			this.approvalCard(ev);
			break;
		case 'approval':
			this.approvalDone(ev);
			break;
		case 'error':
			this.add(el('div', {class: 'line warn', role: 'note'}, el('strong', {text: 'Note: '}), ev.error || 'error'), ev);
			if (ev.fallback === 'offline' && !this.offline)
				this.offline = this.banner('offline', 'The LLM is unreachable: the offline playbook (fixed rules, no AI) answers this turn.');
			break;
		case 'cancelled':
			this.add(el('div', {class: 'line warn', text: 'Cancelled.'}), ev);
			break;
		case 'turn_end':
			this.turnEnd(ev);
			break;
		default:
			this.add(el('div', {class: 'line', text: `(${k})`}), ev);
		}
	}

	bumpSession(ev) {
		const s = this.sessions.find(x => x.id === this.sid);
		if (s && !s.title) {
			s.title = ev.text;
			this.renderSessions();
		}
	}

	toolChip(ev) {
		const input = ev.input || {};
		let label;
		if (ev.name === 'devvm_exec')
			label = `$ ${input.command ?? ''}`;
		else if (ev.name === 'pve')
			label = `pve ${input.verb ?? ''}`;
		else if (ev.name === 'devvm_triage')
			label = 'devvm triage';
		else
			label = `${ev.name} ${JSON.stringify(input)}`;
		const state = el('span', {class: 'chip-state run', text: 'running…'});
		const summary = el('summary', null, el('code', {class: 'chip-cmd', text: label}), ' ', state);
		const body = el('div', {class: 'chip-body'}, el('p', {class: 'hint', text: `${ev.name} · started ${fmtTime(ev.ts)}`}));
		const chip = el('details', {class: 'chip'}, summary, body);
		this.add(chip, ev);
		this.tools.set(ev.tool_use_id, {chip, state, body, ev});
	}

	toolResult(ev) {
		const t = this.tools.get(ev.tool_use_id);
		if (!t) {
			this.add(el('div', {class: 'line', text: `result of ${ev.tool_use_id}`}), ev);
			return;
		}
		this.tools.delete(ev.tool_use_id);
		t.chip.dataset.result = String(ev.id);
		const code = typeof ev.exit_code === 'number' ? ev.exit_code : null;
		const parts = [];
		parts.push(ev.ok ? 'ok' : 'failed');
		if (code !== null && code >= 0)
			parts.push(`exit ${code}`);
		parts.push(fmtMs(ev.elapsed_ms));
		t.state.textContent = parts.filter(Boolean).join(' · ');
		t.state.className = `chip-state ${ev.ok ? 'ok' : 'bad'}`;
		t.body.replaceChildren(
			el('p', {class: 'hint', text: `${t.ev.name} · ${fmtTime(t.ev.ts)} → ${fmtTime(ev.ts)}${ev.truncated ? ' · output truncated by the server' : ''}`}),
			outputBlock(ev.output || '(no output)'));
		if (t.ev.name === 'pve') {
			const m = /^status: *(\S+)/m.exec(ev.output || '');
			if (m)
				this.app.status.vm(m[1], ev.ts);
		}
	}

	approvalCard(ev) {
		const timeoutS = Number.isInteger(ev.timeout_s) ? ev.timeout_s : APPROVAL_TIMEOUT_S;
		const deadline = (ev.ts || Date.now()) + timeoutS * 1000;
		const left = el('span', {class: 'left', role: 'timer'});
		const approve = el('button', {type: 'button', class: 'btn primary', text: `Approve ${ev.verb}`});
		const deny = el('button', {type: 'button', class: 'btn', text: 'Deny'});
		const outcome = el('p', {class: 'outcome', role: 'status'});
		const title = el('h3', {id: `ap-${ev.id}`, text: `Approval needed: ${ev.verb}`});
		// A remedy on the devvm (devvm_remedy) is no Proxmox verb: it says
		// what it will do itself (the event's description) and its target.
		const remedy = typeof ev.name === 'string' && ev.name !== 'pve';
		const target = ev.input && typeof ev.input.target === 'string' ? ev.input.target : '';
		const what = remedy && typeof ev.description === 'string' && ev.description ?
			ev.description.charAt(0).toUpperCase() + ev.description.slice(1) : verbText(ev.verb);
		const ask = remedy ?
			el('p', {class: 'hint ask'}, 'The agent asks for ', el('code', {text: `${ev.verb} ${target}`.trim()}), ' on the devvm. Time left: ', left) :
			el('p', {class: 'hint ask'}, 'The agent asks to run ', el('code', {text: `pve ${ev.verb}`}), '. Time left: ', left);
		const card = el('div', {class: 'card approval', role: 'group', 'aria-labelledby': `ap-${ev.id}`}, title,
			el('p', {text: what}), ask, el('div', {class: 'row'}, approve, deny), outcome);
		const c = {card, title, left, approve, deny, outcome, deadline, done: false, ev};
		const decide = async yes => {
			approve.disabled = deny.disabled = true;
			outcome.textContent = yes ? 'Approving…' : 'Denying…';
			try {
				await api.post(`api/session/${this.sid}/approve`, {nonce: ev.nonce, verb: ev.verb, approved: yes}, 15000);
				if (!c.done) // the approval event may have come first
					outcome.textContent = yes ? 'Approved: waiting for the agent…' : 'Denied.';
			} catch (e) {
				if (!c.done)
					outcome.textContent = `Not accepted: ${e.message}`;
				approve.disabled = deny.disabled = c.done;
			}
		};
		approve.addEventListener('click', () => decide(true));
		deny.addEventListener('click', () => decide(false));
		this.cards.set(ev.nonce, c);
		this.add(card, ev);
		this.scroll(true);
		// Above everything, in case the conversation is scrolled elsewhere.
		c.banner = this.banner('approval', `Approval needed: ${ev.verb}`, {
			label: 'Show',
			run: () => {
				card.scrollIntoView({block: 'center'});
				approve.focus();
			},
		});
		this.countdown();
	}

	approvalDone(ev) {
		const c = this.cards.get(ev.nonce);
		const who = ev.by === 'timeout' ? 'no decision in time' : ev.by === 'cancelled' ? 'the turn was cancelled' : `by ${ev.by}`;
		const text = `${ev.approved ? 'Approved' : 'Denied'} (${who}).`;
		if (c) {
			c.done = true;
			c.approve.disabled = c.deny.disabled = true;
			c.card.classList.add(ev.approved ? 'approved' : 'denied');
			c.card.dataset.done = String(ev.id);
			c.banner.remove();
			c.title.textContent = `${ev.verb}: ${ev.approved ? 'approved' : 'denied'}`;
			c.outcome.textContent = text;
		} else {
			this.add(el('div', {class: 'line', text: `${ev.verb}: ${text}`}), ev);
		}
	}

	countdown() {
		if (!this.cards)
			return;
		const now = Date.now();
		for (const c of this.cards.values()) {
			if (c.done)
				continue;
			const s = Math.max(0, Math.round((c.deadline - now) / 1000));
			c.left.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
			if (s === 0)
				c.approve.disabled = true;
		}
	}

	turnEnd(ev) {
		for (const t of this.tools.values()) {
			t.state.textContent = 'no result';
			t.state.className = 'chip-state bad';
		}
		this.tools.clear();
		for (const c of this.cards.values())
			if (!c.done) {
				c.done = true;
				c.approve.disabled = c.deny.disabled = true;
				c.card.dataset.done = String(ev.id);
				c.banner.remove();
				c.outcome.textContent = 'No decision: the turn ended.';
			}
		const u = ev.usage || {};
		const bits = [`turn ended: ${(ev.stop_reason || '').replace('_', ' ')}`];
		if (typeof u.steps === 'number')
			bits.push(`${u.steps} tool call${u.steps === 1 ? '' : 's'}`);
		this.add(el('div', {class: `line end ${ev.stop_reason === 'end_turn' ? '' : 'warn'}`, text: bits.join(' · ')}), ev);
		this.setRunning(false);
		this.loadSessions();
	}
}

function fromHash() {
	const m = /^#s=([0-9a-f]{32})$/.exec(location.hash);
	return m ? m[1] : null;
}
