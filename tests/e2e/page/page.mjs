// The page's browser test (run by page_e2e.py, which owns the server and
// its peers): headless Debian chromium through playwright-core, every
// scenario of issue 11, axe-core, the page weight, the origins, and
// screenshots of each main state (phone and desktop, light and dark).
import {readFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import {join} from 'node:path';
import readline from 'node:readline';

const env = process.env;
const require = createRequire(join(env.BG_NODE_MODULES, 'x.js'));
const {chromium} = require('playwright-core');
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const URL0 = env.BG_PAGE_URL;
const ORIGIN = new URL(URL0).origin;
const USER = env.BG_E2E_USER;
const SHOTS = env.BG_E2E_SHOTS;
const LONG = 60000;
const t0 = Date.now();

// --- checks, as the other web tests print them ---
const failures = [];
function check(cond, what, detail) {
	if (cond) {
		console.log(`ok   ${what}`);
	} else {
		console.log(`FAIL ${what}${detail !== undefined ? `\n     ${String(typeof detail === 'string' ? detail : JSON.stringify(detail)).slice(0, 1500)}` : ''}`);
		failures.push(what);
	}
	return cond;
}

// --- the fixture's control channel (page_e2e.py) ---
const rl = readline.createInterface({input: process.stdin});
let waiter = null;
rl.on('line', l => {
	const w = waiter;
	waiter = null;
	if (w)
		w(JSON.parse(l));
});
function ctrl(op, extra = {}) {
	return new Promise(res => {
		waiter = res;
		process.stdout.write(`CTRL ${JSON.stringify({op, ...extra})}\n`);
	});
}

// --- the browser, everything it asks for recorded ---
const browser = await chromium.launch({executablePath: env.BG_CHROMIUM, headless: true, args: ['--no-sandbox']});
const context = await browser.newContext({
	viewport: {width: 1280, height: 800},
	extraHTTPHeaders: {'X-authentik-username': USER}, // what the auth proxy in front adds
});
const requests = [];
const assets = new Map(); // url -> bytes, every same-origin non-API answer
const consoleErrors = [];
context.on('request', r => requests.push({url: r.url(), method: r.method(), t: Date.now()}));
context.on('response', async r => {
	const u = new URL(r.url());
	if (u.origin === ORIGIN && !u.pathname.startsWith('/api/') && r.request().method() === 'GET') {
		try {
			assets.set(u.pathname, (await r.body()).length);
		} catch {
			/* a navigation away */
		}
	}
});
const page = await context.newPage();
page.on('console', m => {
	if (m.type() === 'error' || /Content Security Policy/i.test(m.text()))
		consoleErrors.push(m.text());
});
page.on('pageerror', e => consoleErrors.push(`pageerror: ${e.message}`));

// --- helpers ---
const $ = sel => page.locator(sel);
async function shoot(name) {
	const vp = page.viewportSize();
	for (const [dev, size] of [['phone', {width: 360, height: 740}], ['desktop', {width: 1280, height: 800}]]) {
		await page.setViewportSize(size);
		for (const scheme of ['light', 'dark']) {
			await page.emulateMedia({colorScheme: scheme});
			await page.screenshot({path: join(SHOTS, `${name}-${dev}-${scheme}.png`)});
		}
	}
	await page.emulateMedia({colorScheme: 'light'});
	await page.setViewportSize(vp);
}
const domIds = () => page.$$eval('#log [data-id]', ns => ns.map(n => Number(n.dataset.id)));
const unique = a => new Set(a).size === a.length;
async function tab(name) {
	await $(`#tab-${name}`).click();
	await $(`#view-${name}`).waitFor({state: 'visible'});
}
async function axe(label) {
	if (!(await page.evaluate('typeof axe')) || (await page.evaluate('typeof axe')) === 'undefined')
		await page.evaluate(AXE);
	const res = await page.evaluate(() => axe.run(document, {resultTypes: ['violations']}));
	const bad = res.violations.filter(v => v.impact === 'serious' || v.impact === 'critical');
	check(bad.length === 0, `axe: no serious or critical violation (${label})`,
		bad.map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')}`).join('\n'));
}
let tPhase = Date.now();
function phase(name) {
	console.log(`time: ${name} ${((Date.now() - tPhase) / 1000).toFixed(1)} s`);
	tPhase = Date.now();
}
const posts = path => requests.filter(r => r.method === 'POST' && new URL(r.url).pathname === path).length;

try {
	phase('before section 1');
	// 1. The page loads; nothing yet.
	await page.goto(URL0);
	await $('#st-conn').waitFor();
	await page.waitForFunction(() => document.querySelectorAll('#verbs button').length > 0, null, {timeout: LONG});
	check(await page.evaluate(() => !!document.querySelector('h1, h2, header')), 'the page loads with its status bar');
	await shoot('01-empty');

	phase('before section 2');
	// 2. A chat turn with a tool call streams and renders: one tap on a preset.
	await $('[data-preset="triage"]').click();
	await page.waitForFunction(() => /^#s=[0-9a-f]{32}$/.test(location.hash), null, {timeout: LONG});
	const sid = (await page.evaluate(() => location.hash)).slice(3);
	check(await page.evaluate(id => localStorage.getItem('breakglass.session') === id, sid), 'the session is in the URL fragment and in localStorage');
	await $('#log .msg.user').waitFor({timeout: LONG});
	check((await $('#log .msg.user .who').textContent()).includes(USER), 'the prompt shows who sent it', await $('#log .msg.user .who').textContent());
	await $('#log .chip .chip-state.ok').first().waitFor({timeout: LONG});
	const chip = $('#log .chip').first();
	check((await chip.locator('.chip-cmd').textContent()).includes('echo page-e2e-$((6*7)); seq 1 120'), 'the tool call is a chip naming the command');
	check(/ok · exit 0 · [\d.]+ (ms|s)/.test(await chip.locator('.chip-state').textContent()), 'the chip shows the exit status and the duration', await chip.locator('.chip-state').textContent());
	check(!(await chip.evaluate(d => d.open)), 'the chip is folded');
	await chip.locator('summary').click();
	const out = await chip.locator('.chip-body pre').textContent();
	check(out.includes('page-e2e-42') && out.includes('120') && !out.includes('\n60\n'), 'expanded: the head and the tail of a long output', out.slice(0, 200));
	await chip.locator('.elide').click();
	check((await chip.locator('.chip-body pre').textContent()).includes('\n60\n'), 'the whole output one tap away');

	// Agent text with <script>, <img onerror> and a javascript: link is inert text.
	const agent = $('#log .msg.agent').first();
	const atext = await agent.textContent();
	check(atext.includes('<script>window.__pwned=1</script>') && atext.includes('<img src=x onerror="window.__pwned=2">') &&
		atext.includes('[click me](javascript:window.__pwned=3)'), 'hostile markup shows as text', atext);
	check(await page.evaluate(() => window.__pwned === undefined && document.querySelectorAll('#log script, #log img, #log a, #log b, #log i').length === 0),
		'nothing in it ran or became an element (no script, img, a, b, i)');
	check(await agent.locator('code').first().textContent() === 'inline <b>code</b>', 'inline code is a <code> element with its text');
	check((await agent.locator('pre code').textContent()).includes('uptime <i>not italic</i>'), 'a fenced block is <pre><code> with its text');

	phase('before section 3');
	// 3. The approval card; a reload mid-turn replays without duplicates.
	const card = $('#log .card.approval');
	await card.waitFor({timeout: LONG});
	check((await card.locator('h3').textContent()).includes('start') && (await card.locator('p').first().textContent()).length > 10,
		'the approval card names the verb and what it will do', await card.textContent());
	await page.waitForFunction(() => /\d+:\d\d/.test(document.querySelector('.card.approval .left').textContent));
	const left1 = await card.locator('.left').textContent();
	// The countdown ticks once a second; a headless page's timers may be
	// aligned late, so allow a few seconds for the next tick.
	const moved = await page.waitForFunction(l => document.querySelector('.card.approval .left').textContent !== l, left1,
		{timeout: 5000}).then(() => true, () => false);
	check(moved, 'the time left counts down', left1);
	check(await $('#banners .banner.approval').count() === 1, 'a banner above the conversation says an approval waits');
	await $('#banners .banner.approval button:has-text("Show")').click();
	check(await $('#log .card.approval button.primary').evaluate(b => b === document.activeElement), 'its Show button brings the card and focuses Approve');
	await shoot('02-approval');
	const before = await domIds();
	const streamsBefore = requests.filter(r => r.url.includes('/stream')).length;
	await page.reload();
	await $('#log .card.approval').waitFor({timeout: LONG});
	await page.waitForFunction(() => document.getElementById('st-conn').dataset.state === 'live', null, {timeout: LONG});
	const after = await domIds();
	check(unique(after) && JSON.stringify(after) === JSON.stringify(before), 'a reload mid-turn replays the same events, none twice', {before, after});
	check(await $('#log .card.approval').count() === 1 && await $('#log .chip').count() === 2 && await $('#log .msg.user').count() === 1,
		'one approval card, two chips, one prompt after the reload');
	check((await page.evaluate(() => location.hash)) === `#s=${sid}` && requests.filter(r => r.url.includes('/stream')).length > streamsBefore,
		'the same session reopened from the fragment');

	phase('before section 4');
	// 4. Approve: the verb runs.
	await $('#log .card.approval button.primary').click();
	await page.waitForFunction(() => /Approved \(by /.test(document.querySelector('.card.approval .outcome').textContent), null, {timeout: LONG});
	check((await $('#log .card.approval .outcome').textContent()).includes(`by ${USER}`) && await $('#log .card.approval h3').textContent() === 'start: approved' &&
		await $('#banners .banner.approval').count() === 0,
		'the card says it was approved, and by whom');
	await $('#log .line.end').waitFor({timeout: LONG});
	check(await $('#log .chip').nth(1).locator('.chip-state.ok').count() === 1, 'the approved verb ran (its chip ok)');
	check((await ctrl('qemu')).pid > 0, 'a real QEMU runs (the stand-in started it)');
	check(/VM: running/.test(await $('#st-vm').textContent()), 'the status bar shows the VM running', await $('#st-vm').textContent());
	check(await $('#send').isEnabled() && await $('#stop').isDisabled(), 'after the turn: Send enabled, Stop disabled');
	check((await $('#st-user').textContent()).includes(USER), 'the status bar says who is signed in', await $('#st-user').textContent());
	await shoot('03-turn-done');

	phase('before section 5');
	// 5. A server restart mid-session: the page reconnects, then the LLM is
	// unreachable and the offline playbook answers, with a banner.
	const idsBefore = await domIds();
	const streams = requests.filter(r => r.url.includes('/stream')).length;
	const r = await ctrl('restart');
	check(r.ok && r.exit === 0, 'the server restarted', r);
	await page.waitForFunction(n => document.getElementById('st-conn').dataset.state === 'live' && window.breakglass.chat.follower.failures === 0, streams, {timeout: LONG});
	await page.waitForFunction(n => performance.getEntriesByType('resource').length >= 0, null);
	check(requests.filter(x => x.url.includes('/stream')).length > streams, 'the page reconnected its stream after the restart');
	check(JSON.stringify(await domIds()) === JSON.stringify(idsBefore), 'nothing shown twice after the reconnect');
	await $('#prompt').fill('what now?');
	await $('#prompt').press('Enter');
	await $('#banners .banner.offline').waitFor({timeout: LONG});
	check((await $('#banners .banner.offline').textContent()).includes('offline playbook'), 'a banner says the offline playbook answered');
	check(await $('#stop').isEnabled(), 'Stop is offered while the turn runs');
	await page.waitForFunction(() => document.querySelectorAll('#log .line.end').length === 2, null, {timeout: 90000});
	const ids = await domIds();
	const last = await page.evaluate(() => window.breakglass.chat.follower.lastId);
	const list = await (await fetch(`${ORIGIN}/api/sessions`, {headers: {'X-authentik-username': USER}})).json();
	const mine = list.sessions.find(s => s.id === sid);
	check(unique(ids) && mine && mine.events === last + 1, 'every event of the session reached the page once', {ids, last, events: mine && mine.events});
	await shoot('04-offline');

	// Stop: a turn whose model stalls mid-reply is cancelled from the page.
	await $('#prompt').fill('think hard');
	await $('#send').click();
	await page.waitForFunction(() => document.querySelectorAll('#log .msg.agent').length > 0 &&
		/Thinking about/.test([...document.querySelectorAll('#log .msg.agent')].pop().textContent), null, {timeout: LONG});
	check(await $('#stop').isEnabled() && await $('#send').isDisabled(), 'while the reply streams: Stop enabled, Send disabled');
	await $('#stop').click();
	await page.waitForFunction(() => document.querySelectorAll('#log .line.end').length === 3, null, {timeout: LONG});
	check(await $('#banners .banner.offline').count() === 0, 'the offline banner went with its turn');
	check(/cancelled/.test(await $('#log .line.end').last().textContent()) && posts(`/api/session/${sid}/cancel`) === 1,
		'Stop cancels the turn (one cancel request; the turn ends cancelled)', await $('#log .line.end').last().textContent());

	// A session the server does not have (a stale link): said, and forgotten.
	await page.evaluate(() => {
		location.hash = `#s=${'0'.repeat(32)}`;
	});
	await $('#banners .banner.error').waitFor({timeout: LONG});
	check(/not on the server/.test(await $('#banners .banner.error').textContent()) &&
		await page.evaluate(() => localStorage.getItem('breakglass.session')) === null, 'a stale session link: a banner, and it is not reopened next time');
	await page.evaluate(id => {
		location.hash = `#s=${id}`;
	}, sid);
	await page.waitForFunction(() => document.getElementById('st-conn').dataset.state === 'live', null, {timeout: LONG});

	phase('before section 6');
	// 6. Direct VM control, no AI in the path.
	await tab('vm');
	const groups = await $('#verbs h3').allTextContents();
	const inspect = await $('#verbs .verb-group').first().locator('[data-verb]').evaluateAll(ns => ns.map(n => n.dataset.verb));
	check(groups[0] === 'Inspect' && groups[1] === 'Power' && inspect.includes('status') && inspect.includes('forensics'), 'read-only verbs first (Inspect), then Power', {groups, inspect});
	check((await $('#verbs [data-verb="cycle"]').textContent()).includes('recovery for a frozen VM'), 'cycle is marked as the recovery action for a frozen VM');
	await $('#verbs [data-verb="status"]').click();
	await $('#vm-result .verb-result[data-verb="status"]').waitFor({timeout: LONG});
	check((await $('#vm-result h3').textContent()).includes('status: done — VM running') && (await $('#vm-result .facts').textContent()).includes('exit status0'),
		'status: the final state and the exit status', await $('#vm-result').textContent());
	await shoot('05-vm-status');

	// The forensics verdict headline for a SIGSTOPped VM.
	const sig = await ctrl('signal', {signal: 'SIGSTOP'});
	check(sig.ok, 'the QEMU is SIGSTOPped', sig);
	await $('#verbs [data-verb="forensics"]').click();
	await $('#vm-result .verb-result[data-verb="forensics"] .verdict').waitFor({timeout: 120000});
	const verdict = await $('#vm-result .verdict-name').textContent();
	const rec = $('#vm-result .verdict .rec');
	check(verdict && verdict !== 'healthy' && await $('#vm-result .evidence li').count() > 0 && await rec.count() === 1,
		'the forensics verdict is a headline with its evidence and the recommended verb as a button', await $('#vm-result .verdict').textContent());
	check(await $('#vm-result details.raw').first().evaluate(d => !d.open), 'the raw output is folded under the verdict');
	check((await $('#st-vm').textContent()).startsWith(`VM: ${verdict} · `), 'the status bar says what forensics found', await $('#st-vm').textContent());
	await shoot('06-forensics');

	// A mutating verb needs its confirmation.
	const recVerb = (await rec.textContent()).replace('Recommended: ', '');
	await rec.click();
	await $('#vm-confirm').waitFor({state: 'visible'});
	check((await $('#vm-confirm').textContent()).includes(`${recVerb} VM 102`), 'the recommended verb asks for a confirmation naming it', await $('#vm-confirm').textContent());
	await page.waitForTimeout(500);
	check(posts(`/api/pve/${recVerb}`) === 0, 'nothing sent before the second tap');
	await $('#vm-confirm button:has-text("Cancel")').click();
	check(await $('#vm-confirm').isHidden() && posts(`/api/pve/${recVerb}`) === 0, 'Cancel: nothing sent');
	await $('#verbs [data-verb="stop"]').click();
	check(await $('#vm-confirm button.danger').evaluate(b => b === document.activeElement), 'the confirmation takes the focus');
	await page.keyboard.press('Escape');
	check(await $('#vm-confirm').isHidden() && posts('/api/pve/stop') === 0 &&
		await $('#verbs [data-verb="stop"]').evaluate(b => b === document.activeElement), 'Escape cancels it, the focus back on the verb');
	await $('#verbs [data-verb="cycle"]').click();
	check((await $('#vm-confirm').textContent()).includes('frozen VM'), 'the cycle confirmation says what it will do', await $('#vm-confirm').textContent());
	await shoot('07-confirm');
	// Every text the running line shows, and when, recorded in the page: a
	// cycle can end within a second on a quiet machine, before the counter
	// moves. The line's lifetime is measured on the page's own clock, as the
	// time from the test's click to the result also counts Playwright's round
	// trips (a loaded CI machine once made that 1.5 s of a 0.9 s line).
	await page.evaluate(() => {
		window.bgRunLines = [];
		window.bgRunShown = null;
		window.bgRunGone = null;
		new MutationObserver(() => {
			const lines = document.querySelectorAll('#vm-running .run-line[data-verb="cycle"]');
			if (lines.length && window.bgRunShown === null)
				window.bgRunShown = performance.now();
			if (!lines.length && window.bgRunShown !== null && window.bgRunGone === null)
				window.bgRunGone = performance.now();
			for (const p of lines)
				window.bgRunLines.push(p.textContent);
		}).observe(document.getElementById('vm-running'), {subtree: true, childList: true, characterData: true});
	});
	const cycleStarted = Date.now();
	await $('#vm-confirm button.danger').click();
	await $('#vm-running .run-line').waitFor();
	check(await $('#verbs [data-verb="cycle"]').isDisabled() && await $('#verbs [data-verb="stop"]').isDisabled(), 'while cycle runs, it and the other mutating verbs cannot be fired');
	await $('#verbs [data-verb="cycle"]').click({force: true, timeout: 2000}).catch(() => {});
	await $('#vm-result .verb-result[data-verb="cycle"]').waitFor({timeout: 150000});
	const cycleMs = Date.now() - cycleStarted;
	const runLines = [...new Set(await page.evaluate(() => window.bgRunLines))];
	const lineMs = await page.evaluate(() => window.bgRunGone === null || window.bgRunShown === null
		? null : Math.round(window.bgRunGone - window.bgRunShown));
	check(runLines.includes('cycle: running… 0 s') && lineMs !== null &&
		(lineMs < 1500 || runLines.some(t => /^cycle: running… [1-9]\d* s$/.test(t))),
		'the running verb shows its elapsed time, counting',
		`line shown for ${lineMs} ms (${cycleMs} ms from the click): ${JSON.stringify(runLines)}`);
	check(posts('/api/pve/cycle') === 1, 'cycle was sent exactly once', posts('/api/pve/cycle'));
	const cyc = await $('#vm-result').textContent();
	check(/cycle: done — VM running/.test(cyc) && await $('#vm-result table.steps tbody tr').count() > 2 && /\d+ ms|\d\.\d s/.test(await $('#vm-result table.steps').textContent()),
		'cycle: the VM runs again, the steps with their times', cyc.slice(0, 400));
	check((await $('#vm-result details.raw summary').allTextContents()).some(t => t.startsWith('Full output')), 'the full output is there');
	check((await $('#vm-result .verdict-before summary').textContent()).startsWith('Before cycle, forensics found: ') &&
		await $('#vm-result .verdict .rec').count() === 0, 'after cycle: the evidence it took first, folded, and no button to cycle again');
	await shoot('08-cycle-result');

	phase('before section 7');
	// 7. devvm triage: findings first, raw folded.
	await tab('triage');
	await $('#triage-run').click();
	await $('#triage-result article').waitFor({timeout: 120000});
	const tri = await $('#triage-result h3').textContent();
	check(/finding|No findings/.test(tri) && await $('#triage-result details.raw').count() === 1 && !(await $('#triage-result details.raw').evaluate(d => d.open)),
		'triage: findings first, the raw sections folded', tri);
	await shoot('09-triage');

	// The status bar: the peers as the server last heard from them (a
	// reload asks at once): all answered last; the LLM failed before.
	await page.reload();
	await page.waitForFunction(() => ['devvm', 'pve', 'llm'].every(k => document.getElementById(`dep-${k}`).dataset.state !== 'unknown'), null, {timeout: LONG});
	const deps = await page.$$eval('.dep', ns => ns.map(n => n.dataset.state));
	await $('#st-deps').click();
	await $('#deps-info').waitFor({state: 'visible'});
	const lines = await $('#deps-info li').allTextContents();
	check(deps.join() === 'ok,ok,ok' && lines.length === 3 && /^LLM: up\. .*failed (just now|[^;]* ago): the LLM is unreachable/.test(lines[2]) &&
		/^PVE: up\. answered (just now|.* ago)/.test(lines[1]) && (await $('#st-deps').getAttribute('aria-label')) === 'devvm PVE LLM: devvm up, PVE up, LLM up',
		'the status bar: devvm, PVE and the LLM (its last reply) up; a tap tells when, and the LLM\'s earlier failure (from /api/health/deps)', {deps, lines});
	await shoot('09b-peers');
	await $('#st-deps').click();
	check(/VM: running · /.test(await $('#st-vm').textContent()), 'the status bar: the VM running, and when it was read', await $('#st-vm').textContent());

	phase('before section 8');
	// 8. Audit, filterable by kind.
	await tab('audit');
	await page.waitForFunction(() => document.querySelectorAll('#audit-list li').length > 0, null, {timeout: LONG});
	const actions = await $('#audit-list strong').allTextContents();
	check(actions.includes('agent.prompt') && actions.includes('approval') && actions.includes('pve.mutate'), 'the audit lists the actions', actions);
	await $('#audit-kind').selectOption('pve');
	await page.waitForFunction(() => /of kind pve/.test(document.getElementById('audit-note').textContent));
	const pve = await $('#audit-list strong').allTextContents();
	check(pve.length > 0 && pve.every(a => a.startsWith('pve.')) && requests.some(x => x.url.includes('/api/audit?limit=200&kind=pve')),
		'filtered by kind pve (by the server)', pve);
	await shoot('10-audit');

	phase('before section 9');
	// 9. Phone: no horizontal scroll in any view; the composer above the keyboard.
	await page.setViewportSize({width: 360, height: 740});
	for (const v of ['chat', 'vm', 'triage', 'audit']) {
		await tab(v);
		const w = await page.evaluate(() => [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]);
		check(w[0] <= w[2] && w[1] <= w[2], `phone 360 px: no horizontal scroll (${v})`, w);
		for (const scheme of ['light', 'dark']) {
			await page.emulateMedia({colorScheme: scheme});
			await axe(`${v}, phone, ${scheme}`);
		}
		await page.emulateMedia({colorScheme: 'light'});
	}
	await tab('chat');
	await page.setViewportSize({width: 360, height: 740 - 300}); // the on-screen keyboard takes 300 px
	await $('#prompt').focus();
	const vh = await page.evaluate(() => (window.visualViewport ? window.visualViewport.height : window.innerHeight));
	const boxes = await Promise.all(['#prompt', '#send', '#stop'].map(s => $(s).boundingBox()));
	check(boxes.every(b => b && b.y >= 0 && b.y + b.height <= vh + 0.5), 'the composer stays visible above a 300 px keyboard', {vh, boxes});
	await page.screenshot({path: join(SHOTS, '11-keyboard-phone-light.png')});
	await page.setViewportSize({width: 1280, height: 800});

	phase('before section 10');
	// 10. Keyboard only: Tab reaches the views, the composer and Send, with a visible focus.
	await page.evaluate(() => document.activeElement && document.activeElement.blur());
	const seen = [];
	let outline = '';
	for (let i = 0; i < 60; i++) {
		await page.keyboard.press('Tab');
		const f = await page.evaluate(() => {
			const e = document.activeElement;
			const s = getComputedStyle(e);
			return {id: e.id, tag: e.tagName, outline: `${s.outlineStyle} ${s.outlineWidth}`};
		});
		seen.push(f.id || f.tag);
		if (f.id === 'tab-vm')
			outline = f.outline;
	}
	check(['tab-chat', 'tab-vm', 'new-session', 'prompt'].every(id => seen.includes(id)), 'Tab reaches the views, New session and the composer', seen);
	check(/solid [1-9]/.test(outline), 'the focused control has a visible outline', outline);

	phase('before section 11');
	// 11. No LLM configured: the page says so above the conversation.
	check((await ctrl('offline')).ok, 'the server restarted with provider = offline');
	await page.reload();
	await $('#banners .banner.offline').waitFor({timeout: LONG});
	check(/No LLM is configured/.test(await $('#banners .banner.offline').textContent()) &&
		await $('#dep-llm').getAttribute('data-state') === 'off', 'provider = offline: a banner says the playbook answers every turn; the LLM dot says offline');

	phase('before section 12');
	// 12. Page weight, the manifest and its icons, origins, CSP.
	const man = await page.evaluate(async () => {
		const link = document.querySelector('link[rel="manifest"]');
		const res = await fetch(link.href);
		const m = await res.json();
		const icons = [];
		for (const i of m.icons) {
			const r = await fetch(new URL(i.src, link.href));
			icons.push({src: i.src, status: r.status, type: r.headers.get('content-type'), sizes: i.sizes});
		}
		return {status: res.status, type: res.headers.get('content-type'), name: m.name, display: m.display, icons};
	});
	check(man.status === 200 && man.display === 'standalone' && man.icons.length >= 1 && man.icons.every(i => i.status === 200),
		'the manifest and its icons are served (installable to a home screen)', man);
	await page.waitForTimeout(300);
	const total = [...assets.values()].reduce((a, b) => a + b, 0);
	check(total > 0 && total < 100 * 1024, `page weight: ${total} bytes in ${assets.size} assets (< 100 KiB)`, [...assets.entries()]);
	console.log(`measured: page weight ${total} bytes (${(total / 1024).toFixed(1)} KiB) in ${assets.size} assets`);
	const foreign = requests.filter(x => !x.url.startsWith('data:') && new URL(x.url).origin !== ORIGIN);
	check(foreign.length === 0, `no request to another origin (${requests.length} requests)`, foreign.map(x => x.url));
	check(consoleErrors.filter(e => !/Failed to load resource|ERR_|net::/.test(e)).length === 0, 'no CSP violation, no script error', consoleErrors);

	phase('the rest');
} catch (e) {
	check(false, 'the scenario ran to its end', e.stack || String(e));
	try {
		await page.screenshot({path: join(SHOTS, 'failure.png')});
	} catch {
		/* the browser is gone */
	}
}
await browser.close();
rl.close();
console.log(`measured: the browser test took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
if (failures.length) {
	console.log(`${failures.length} check(s) failed: ${failures.join(', ')}`);
	process.exit(1);
}
console.log('all checks passed');
process.exit(0);
