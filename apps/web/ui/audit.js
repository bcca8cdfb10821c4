// The newest audit records, filterable by kind (the part of the action
// before its first dot: session, agent, tool, approval, pve, devvm, auth).
import * as api from './api.js';
import {el, fmtTime} from './render.js';

export class Audit {
	constructor(app) {
		this.app = app;
		this.$ = id => document.getElementById(id);
		this.records = [];
		this.$('audit-refresh').addEventListener('click', () => this.load());
		this.$('audit-kind').addEventListener('change', () => this.load());
	}

	async load() {
		const kind = this.$('audit-kind').value;
		const note = this.$('audit-note');
		note.textContent = 'Loading…';
		let doc;
		try {
			const q = kind ? `&kind=${encodeURIComponent(kind)}` : '';
			try {
				doc = await api.get(`api/audit?limit=200${q}`, 15000);
			} catch (e) {
				// A server without the kind filter: filter here.
				if (!q || e.status !== 400)
					throw e;
				doc = await api.get('api/audit?limit=1000', 15000);
			}
		} catch (e) {
			note.textContent = `The audit could not be read: ${e.message}`;
			return;
		}
		const all = Array.isArray(doc) ? doc : Array.isArray(doc && doc.records) ? doc.records : [];
		this.records = all.filter(r => !kind || kindOf(r.action) === kind);
		this.render(kind);
	}

	render(kind) {
		const list = this.$('audit-list');
		list.replaceChildren();
		for (const r of this.records) {
			const res = String(r.result || '');
			list.append(el('li', {class: `audit ${/^(ok|accepted|approved)$/.test(res) ? '' : 'warn'}`},
				el('div', {class: 'audit-head'},
					el('time', {datetime: r.time || '', text: fmtTime(r.time) || r.time || ''}), ' ',
					el('strong', {text: r.action || ''}), ' ',
					el('span', {text: r.target || ''}), ' ',
					el('span', {class: 'pill', text: res})),
				el('div', {class: 'hint'}, `by ${r.who || '?'}`, r.detail ? ` · ${r.detail}` : '')));
		}
		this.$('audit-note').textContent = `${this.records.length} record${this.records.length === 1 ? '' : 's'}${kind ? ` of kind ${kind}` : ''}, newest first.`;
	}
}

function kindOf(action) {
	const a = String(action || '');
	const i = a.indexOf('.');
	return i < 0 ? a : a.slice(0, i);
}
