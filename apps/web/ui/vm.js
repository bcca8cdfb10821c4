// Direct VM control, no AI in the path: the verbs of /api/pve/verbs,
// read-only ones first; a mutating verb runs only after a second tap on a
// confirmation that says what it will do; one run at a time per button.
import * as api from './api.js';
import {el, fmtMs, fmtTime, outputBlock} from './render.js';
import {setServerDescriptions, verbText} from './verbs.js';

const VERB_TIMEOUT_MS = 300000; // above the server's [pve] verb_timeout (240 s)

export class Vm {
	constructor(app) {
		this.app = app;
		this.$ = id => document.getElementById(id);
		this.buttons = new Map();
		this.mutating = new Set();
		this.busy = new Set();
		this.vmid = '';
	}

	async start() {
		let doc;
		try {
			doc = await api.get('api/pve/verbs', 15000);
		} catch (e) {
			this.$('verbs').replaceChildren(el('p', {class: 'banner error', role: 'alert', text: `The verbs could not be read: ${e.message}`}));
			return;
		}
		const verbs = Array.isArray(doc.verbs) ? doc.verbs : [];
		this.mutating = new Set(Array.isArray(doc.mutating) ? doc.mutating : []);
		this.vmid = doc.vmid ? String(doc.vmid) : '';
		const table = Array.isArray(doc.table) ? doc.table : [];
		setServerDescriptions(Object.fromEntries(table.filter(t => t && t.name).map(t => [t.name, t.summary])));
		const inspect = verbs.filter(v => !this.mutating.has(v));
		const power = verbs.filter(v => this.mutating.has(v));
		const group = (title, hint, list) => {
			const g = el('div', {class: 'verb-group', role: 'group', 'aria-label': title},
				el('h3', {text: title}), el('p', {class: 'hint', text: hint}));
			const row = el('div', {class: 'verb-row'});
			for (const v of list)
				row.append(this.button(v));
			g.append(row);
			return g;
		};
		this.$('verbs').replaceChildren(
			group('Inspect', 'Read-only: safe to run at any time.', inspect),
			group('Power', `Changes VM ${this.vmid}: each asks you to confirm first.`, power));
	}

	button(v) {
		const m = this.mutating.has(v);
		const b = el('button', {type: 'button', class: `btn verb ${m ? 'mut' : ''} ${v === 'cycle' ? 'recovery' : ''}`, dataset: {verb: v}},
			el('span', {class: 'verb-name', text: v}));
		if (v === 'cycle')
			b.append(el('span', {class: 'verb-tag', text: 'recovery for a frozen VM'}));
		b.addEventListener('click', () => (m ? this.confirm(v) : this.run(v)));
		this.buttons.set(v, b);
		return b;
	}

	confirm(v) {
		if (this.busy.has(v))
			return;
		const box = this.$('vm-confirm');
		const yes = el('button', {type: 'button', class: 'btn danger', text: `Yes, ${v} VM ${this.vmid}`});
		const no = el('button', {type: 'button', class: 'btn', text: 'Cancel'});
		yes.addEventListener('click', () => {
			box.hidden = true;
			box.replaceChildren();
			this.run(v);
		});
		no.addEventListener('click', () => {
			box.hidden = true;
			box.replaceChildren();
			const b = this.buttons.get(v);
			if (b)
				b.focus();
		});
		box.replaceChildren(
			el('h3', {id: 'vm-confirm-h', text: `${v} VM ${this.vmid}?`}),
			el('p', {text: verbText(v)}),
			el('div', {class: 'row'}, yes, no));
		box.onkeydown = e => {
			if (e.key === 'Escape')
				no.click();
		};
		box.setAttribute('role', 'alertdialog');
		box.setAttribute('aria-labelledby', 'vm-confirm-h');
		box.hidden = false;
		yes.focus();
	}

	setBusy(v, on) {
		if (on)
			this.busy.add(v);
		else
			this.busy.delete(v);
		const anyMut = [...this.busy].some(x => this.mutating.has(x));
		for (const [name, b] of this.buttons) {
			// A verb never runs twice at once; a mutating verb waits for the
			// other mutating verb (the host holds one lock for them).
			b.disabled = this.busy.has(name) || (this.mutating.has(name) && anyMut);
			b.setAttribute('aria-busy', this.busy.has(name) ? 'true' : 'false');
		}
	}

	async run(v) {
		if (this.busy.has(v))
			return;
		this.setBusy(v, true);
		const t0 = Date.now();
		const line = el('p', {class: 'run-line', dataset: {verb: v}});
		this.$('vm-running').append(line);
		const tick = () => {
			line.textContent = `${v}: running… ${Math.floor((Date.now() - t0) / 1000)} s`;
		};
		tick();
		const timer = setInterval(tick, 1000);
		let doc = null;
		let err = null;
		try {
			doc = await api.post(`api/pve/${encodeURIComponent(v)}`, {}, VERB_TIMEOUT_MS);
		} catch (e) {
			err = e;
			doc = e.body && typeof e.body === 'object' && 'verb' in e.body ? e.body : null;
		}
		clearInterval(timer);
		line.remove();
		this.setBusy(v, false);
		this.show(v, doc, err, Date.now() - t0);
	}

	show(v, doc, err, ms) {
		const out = this.$('vm-result');
		const r = doc && doc.result && typeof doc.result === 'object' ? doc.result : null;
		const box = el('article', {class: 'card verb-result', 'aria-label': `Result of ${v}`, tabindex: '-1', dataset: {verb: v}});
		const ok = doc && doc.exit_code === 0;
		let head;
		if (!doc)
			head = `${v}: ${err ? err.message : 'no answer'}`;
		else
			head = `${v}: ${ok ? 'done' : doc.rejected ? 'rejected' : 'failed'}${r && r.status ? ` — VM ${r.status}` : ''}`;
		const verdict = v === 'forensics' && r && r.forensics ? r.forensics.verdict || 'unknown' : null;
		const sound = ok && (!verdict || verdict === 'healthy');
		box.append(el('h3', {class: sound ? 'ok' : 'bad', text: head}));
		if (r && r.forensics)
			box.append(this.verdict(r.forensics, v));
		const facts = el('dl', {class: 'facts'});
		const fact = (k, val) => facts.append(el('dt', {text: k}), el('dd', {text: val}));
		if (r && r.status)
			fact('VM state', r.status);
		if (doc)
			fact('exit status', String(doc.exit_code));
		fact('took', fmtMs(r && typeof r.elapsed_ms === 'number' ? r.elapsed_ms : ms));
		fact('at', fmtTime(Date.now()));
		if (doc && (doc.error || (r && r.error)))
			fact('error', String(doc.error || r.error));
		if (err && err.status === 409 && err.body)
			fact('busy', `${err.body.verb || 'a verb'} by ${err.body.holder || '?'} since ${err.body.since || '?'}`);
		box.append(facts);
		if (r && Array.isArray(r.steps) && r.steps.length) {
			const tbl = el('table', {class: 'steps'}, el('caption', {text: 'Steps'}),
				el('thead', null, el('tr', null, el('th', {scope: 'col', text: 'step'}), el('th', {scope: 'col', text: 'ok'}),
					el('th', {scope: 'col', text: 'time'}), el('th', {scope: 'col', text: 'detail'}))));
			const tb = el('tbody');
			for (const s of r.steps)
				tb.append(el('tr', {class: s.ok ? '' : 'bad'}, el('td', {text: s.name || ''}), el('td', {text: s.ok ? 'yes' : 'NO'}),
					el('td', {text: fmtMs(s.elapsed_ms)}), el('td', {text: s.detail || ''})));
			tbl.append(tb);
			box.append(el('div', {class: 'scroll-x', tabindex: '0', role: 'region', 'aria-label': 'Steps'}, tbl));
		}
		if (doc) {
			const stdout = readable(doc.stdout);
			box.append(el('details', {class: 'raw', open: !r},
				el('summary', {text: `Full output (${stdout.split('\n').length} lines)`}),
				outputBlock(stdout || '(empty)', {head: 400, tail: 200, label: 'stdout'})));
			if (doc.stderr)
				box.append(el('details', {class: 'raw', open: !ok}, el('summary', {text: 'stderr'}),
					outputBlock(doc.stderr, {label: 'stderr'})));
		}
		out.replaceChildren(box);
		// A frozen VM is "running" to qm: the status bar says what forensics found.
		if (verdict && verdict !== 'healthy')
			this.app.status.vm(r.status ? `${r.status} (${verdict})` : verdict, Date.now());
		else if (r && r.status)
			this.app.status.vm(r.status, Date.now());
		box.focus();
	}

	// The verdict as the headline of a forensics run; after a power verb,
	// the evidence it took first, folded (the state it found is gone).
	verdict(f, verb) {
		const v = f.verdict || 'unknown';
		const evidence = Array.isArray(f.evidence) ? f.evidence : String(f.evidence || '').split('\n').filter(Boolean);
		const ul = el('ul', {class: 'evidence'});
		for (const e of evidence)
			ul.append(el('li', {text: e}));
		if (verb !== 'forensics') {
			return el('details', {class: 'raw verdict-before'},
				el('summary', null, `Before ${verb}, forensics found: `, el('strong', {text: v})), ul,
				f.id ? el('p', {class: 'hint', text: `bundle ${f.id}`}) : null);
		}
		const box = el('section', {class: `verdict v-${v.replace(/[^a-z-]/g, '')}`, 'aria-label': 'Forensics verdict'},
			el('h4', null, 'Verdict: ', el('strong', {class: 'verdict-name', text: v})));
		if (evidence.length)
			box.append(ul);
		const rec = f.recommended_verb;
		if (rec && this.buttons.has(rec)) {
			const b = el('button', {type: 'button', class: `btn ${this.mutating.has(rec) ? 'danger' : 'primary'} rec`, text: `Recommended: ${rec}`});
			b.addEventListener('click', () => (this.mutating.has(rec) ? this.confirm(rec) : this.run(rec)));
			box.append(b);
		} else {
			box.append(el('p', {class: 'hint', text: 'No power action recommended: look inside the guest or at the host.'}));
		}
		if (f.id)
			box.append(el('p', {class: 'hint', text: `bundle ${f.id}${f.path ? ` at ${f.path}` : ''}`}));
		return box;
	}
}

// The host's --json document, indented; any other text as it came.
function readable(text) {
	const s = String(text || '');
	if (/^\s*\{/.test(s)) {
		try {
			return JSON.stringify(JSON.parse(s), null, 2);
		} catch {
			return s;
		}
	}
	return s;
}
