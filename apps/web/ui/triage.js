// The devvm triage, no AI in the path: findings first (severity,
// evidence), the raw sections folded below.
import * as api from './api.js';
import {el, fmtMs, fmtTime, outputBlock} from './render.js';

const ORDER = {critical: 0, error: 1, warning: 2, warn: 2, info: 3};

export class Triage {
	constructor(app) {
		this.app = app;
		this.$ = id => document.getElementById(id);
		this.running = false;
		this.$('triage-run').addEventListener('click', () => this.run());
	}

	async run() {
		if (this.running)
			return;
		this.running = true;
		const btn = this.$('triage-run');
		btn.disabled = true;
		const t0 = Date.now();
		const status = this.$('triage-running');
		const tick = () => {
			status.textContent = `Triage running… ${Math.floor((Date.now() - t0) / 1000)} s`;
		};
		tick();
		const timer = setInterval(tick, 1000);
		let doc = null;
		let err = null;
		try {
			doc = await api.post('api/devvm/triage', {}, 120000);
		} catch (e) {
			err = e;
		}
		clearInterval(timer);
		status.textContent = '';
		btn.disabled = false;
		this.running = false;
		this.show(doc, err, Date.now() - t0);
	}

	show(doc, err, ms) {
		const box = el('article', {class: 'card', 'aria-label': 'Triage result', tabindex: '-1'});
		if (!doc) {
			box.append(el('h3', {class: 'bad', text: `Triage failed: ${err ? err.message : 'no answer'}`}));
			this.$('triage-result').replaceChildren(box);
			box.focus();
			return;
		}
		const findings = Array.isArray(doc.findings) ? [...doc.findings] : [];
		findings.sort((a, b) => (ORDER[a.severity] ?? 9) - (ORDER[b.severity] ?? 9));
		box.append(el('h3', {class: findings.length ? 'bad' : 'ok',
			text: findings.length ? `${findings.length} finding${findings.length === 1 ? '' : 's'}` : 'No findings: nothing looks wrong'}));
		box.append(el('p', {class: 'hint', text: `at ${fmtTime(Date.now())} · took ${fmtMs(typeof doc.elapsed_ms === 'number' ? doc.elapsed_ms : ms)}`}));
		const ul = el('ul', {class: 'findings'});
		for (const f of findings) {
			const sev = String(f.severity || 'info');
			const li = el('li', {class: `finding sev-${sev.replace(/[^a-z]/g, '')}`},
				el('span', {class: 'sev', text: sev}), ' ',
				el('strong', {text: f.summary || f.rule || ''}),
				f.rule ? el('span', {class: 'hint', text: ` (${f.rule})`}) : null,
				f.culprit ? el('p', {class: 'hint'}, 'culprit: ', el('code', {text: String(f.culprit)})) : null);
			if (f.evidence)
				li.append(outputBlock(f.evidence, {head: 10, tail: 5, label: 'Evidence'}));
			ul.append(li);
		}
		box.append(ul);
		const sections = Array.isArray(doc.sections) ? doc.sections : [];
		if (sections.length) {
			const raw = el('details', {class: 'raw'}, el('summary', {text: `Raw sections (${sections.length})`}));
			for (const s of sections) {
				raw.append(el('details', {class: 'section'},
					el('summary', null, el('code', {text: s.name || '?'}), s.ok === false ? el('span', {class: 'bad', text: ' failed'}) : ''),
					s.error ? el('p', {class: 'bad', text: String(s.error)}) : null,
					outputBlock(s.output || '(empty)', {label: s.name || 'section'})));
			}
			box.append(raw);
		}
		this.$('triage-result').replaceChildren(box);
		box.focus();
	}
}
