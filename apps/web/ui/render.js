// Text from outside (the model, the guest, the host) to DOM, with
// textContent only: nothing is ever parsed as HTML, no link is made.
// ```fenced``` blocks become <pre><code>, `inline` spans <code>.

export function el(tag, props, ...kids) {
	const e = document.createElement(tag);
	if (props) {
		for (const [k, v] of Object.entries(props)) {
			if (v === undefined || v === null || v === false)
				continue;
			if (k === 'text')
				e.textContent = v;
			else if (k === 'class')
				e.className = v;
			else if (k === 'on')
				for (const [ev, fn] of Object.entries(v))
					e.addEventListener(ev, fn);
			else if (k === 'dataset')
				Object.assign(e.dataset, v);
			else if (k === 'hidden' || k === 'disabled' || k === 'open')
				e[k] = true;
			else
				e.setAttribute(k, String(v));
		}
	}
	for (const kid of kids) {
		if (kid === null || kid === undefined || kid === false)
			continue;
		e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
	}
	return e;
}

function inline(parent, text) {
	const parts = text.split('`');
	// An odd count of backticks leaves the last one as text.
	for (let i = 0; i < parts.length; i++) {
		const odd = i % 2 === 1;
		if (odd && i < parts.length - 1 && parts[i] !== '')
			parent.append(el('code', {text: parts[i]}));
		else if (odd)
			parent.append(document.createTextNode('`' + parts[i]));
		else if (parts[i])
			strong(parent, parts[i]);
	}
}

// **bold** (what models and the offline playbook write) as <strong>.
function strong(parent, text) {
	const parts = text.split('**');
	for (let i = 0; i < parts.length; i++) {
		if (i % 2 === 1 && i < parts.length - 1 && parts[i].trim())
			parent.append(el('strong', {text: parts[i]}));
		else if (parts[i] || i % 2 === 1)
			parent.append(document.createTextNode(i % 2 === 1 ? `**${parts[i]}` : parts[i]));
	}
}

// The text as blocks: paragraphs (with inline code) and code blocks. An
// unclosed fence (a reply still streaming) is shown as code so far.
export function renderText(container, text) {
	container.replaceChildren();
	const lines = String(text).split('\n');
	let para = [];
	let code = null;
	let lang = '';
	const flushPara = () => {
		const s = para.join('\n').replace(/^\n+|\n+$/g, '');
		if (s) {
			const p = el('p');
			inline(p, s);
			container.append(p);
		}
		para = [];
	};
	for (const line of lines) {
		const fence = /^\s*```\s*([\w+-]*)\s*$/.exec(line);
		if (code !== null) {
			if (fence && fence[1] === '') {
				container.append(codeBlock(code.join('\n'), lang));
				code = null;
			} else {
				code.push(line);
			}
		} else if (fence) {
			flushPara();
			code = [];
			lang = fence[1];
		} else if (line.trim() === '') {
			flushPara();
		} else {
			para.push(line);
		}
	}
	if (code !== null)
		container.append(codeBlock(code.join('\n'), lang));
	flushPara();
}

function codeBlock(text, lang) {
	const c = el('code', {text});
	if (lang)
		c.dataset.lang = lang;
	return el('pre', {class: 'code', tabindex: '0'}, c);
}

// Long output: the head and the tail, with the rest one tap away.
export function outputBlock(text, {head = 20, tail = 20, label = 'Output'} = {}) {
	const s = String(text ?? '');
	const lines = s.split('\n');
	if (lines.length > 1 && lines[lines.length - 1] === '')
		lines.pop();
	const wrap = el('div', {class: 'output'});
	if (lines.length <= head + tail + 5) {
		wrap.append(el('pre', {class: 'code', tabindex: '0', 'aria-label': label}, el('code', {text: lines.join('\n')})));
		return wrap;
	}
	const hidden = lines.length - head - tail;
	const pre = el('pre', {class: 'code', tabindex: '0', 'aria-label': label});
	const top = el('code', {text: lines.slice(0, head).join('\n')});
	const mid = el('button', {type: 'button', class: 'btn small elide', text: `… ${hidden} more lines — show all`});
	const bottom = el('code', {text: lines.slice(lines.length - tail).join('\n')});
	mid.addEventListener('click', () => {
		pre.replaceChildren(el('code', {text: lines.join('\n')}));
	});
	pre.append(top, el('span', {class: 'elide-row'}, mid), bottom);
	wrap.append(pre);
	return wrap;
}

export function fmtMs(ms) {
	if (typeof ms !== 'number' || !isFinite(ms))
		return '';
	if (ms < 1000)
		return `${Math.round(ms)} ms`;
	if (ms < 60000)
		return `${(ms / 1000).toFixed(1)} s`;
	return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function fmtTime(t) {
	const d = t instanceof Date ? t : new Date(t);
	if (isNaN(d))
		return '';
	const time = d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false});
	if (new Date().toDateString() === d.toDateString())
		return time;
	return `${d.toLocaleDateString([], {month: 'short', day: 'numeric'})} ${time}`;
}

export function fmtAgo(t, now = Date.now()) {
	const d = t instanceof Date ? t.getTime() : new Date(t).getTime();
	if (!isFinite(d))
		return '';
	const s = Math.max(0, Math.round((now - d) / 1000));
	if (s < 5)
		return 'just now';
	if (s < 60)
		return `${s} s ago`;
	if (s < 3600)
		return `${Math.floor(s / 60)} min ago`;
	if (s < 86400)
		return `${Math.floor(s / 3600)} h ago`;
	return d ? new Date(d).toLocaleDateString() : '';
}
