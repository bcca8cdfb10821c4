// Follows a session's event stream over fetch (so the page sets
// Last-Event-ID itself on every reconnect): resumes after the last event
// it handed on, reconnects with backoff after a blip or a server restart,
// and never hands on an event id twice.
import {url} from './api.js';

const IDLE_MS = 40000; // the server sends a keepalive every 15 s
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

export class Follower {
	// handlers: onEvent(ev), onCaughtUp(), onState(state, detail)
	// state: 'connecting' | 'live' | 'retrying' | 'closed'
	constructor(sessionId, handlers) {
		this.id = sessionId;
		this.h = handlers;
		this.lastId = -1;
		this.stopped = false;
		this.failures = 0;
		this.ctl = null;
		this.timer = null;
	}

	start() {
		this.loop();
		return this;
	}

	stop() {
		this.stopped = true;
		// Whatever is still in flight reaches no one: the next follower owns the page.
		this.h = {onEvent() {}, onCaughtUp() {}, onState() {}};
		if (this.ctl)
			this.ctl.abort();
		clearTimeout(this.timer);
	}

	// Reconnect now (the network came back, the tab became visible).
	poke() {
		if (this.waiting) {
			clearTimeout(this.timer);
			this.waiting();
		}
	}

	async loop() {
		while (!this.stopped) {
			let why = '';
			try {
				why = await this.once();
			} catch (e) {
				why = e && e.message ? e.message : String(e);
			}
			if (this.stopped)
				break;
			const wait = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
			this.failures++;
			this.h.onState('retrying', `${why}; again in ${Math.round(wait / 100) / 10} s`);
			await new Promise(res => {
				this.waiting = res;
				this.timer = setTimeout(res, wait);
			});
			this.waiting = null;
		}
		this.h.onState('closed', '');
	}

	// One connection: resolves with why it ended.
	async once() {
		this.h.onState('connecting', '');
		this.ctl = new AbortController();
		const ctl = this.ctl;
		let idle = setTimeout(() => ctl.abort(), IDLE_MS);
		const headers = {Accept: 'text/event-stream'};
		if (this.lastId >= 0)
			headers['Last-Event-ID'] = String(this.lastId);
		const res = await fetch(url(`api/session/${encodeURIComponent(this.id)}/stream`),
			{headers, cache: 'no-store', credentials: 'same-origin', signal: ctl.signal});
		if (!res.ok) {
			clearTimeout(idle);
			if (res.status === 404) {
				this.stopped = true;
				this.h.onState('closed', 'no such session');
				return 'no such session';
			}
			return `HTTP ${res.status}`;
		}
		const reader = res.body.getReader();
		const dec = new TextDecoder();
		let buf = '';
		try {
			for (;;) {
				const {value, done} = await reader.read();
				clearTimeout(idle);
				if (done)
					return 'the stream ended';
				idle = setTimeout(() => ctl.abort(), IDLE_MS);
				buf += dec.decode(value, {stream: true});
				let m;
				while ((m = /\r?\n\r?\n/.exec(buf))) {
					const frame = buf.slice(0, m.index);
					buf = buf.slice(m.index + m[0].length);
					if (this.frame(frame) === 'shutdown')
						return 'the server is restarting';
				}
			}
		} catch (e) {
			return this.stopped ? 'stopped' : e.name === 'AbortError' ? 'no data for 40 s' : 'the connection dropped';
		} finally {
			clearTimeout(idle);
		}
	}

	frame(text) {
		let event = 'message';
		let id = null;
		const data = [];
		for (const line of text.split(/\r?\n/)) {
			if (line === '' || line[0] === ':')
				continue;
			const i = line.indexOf(':');
			const k = i < 0 ? line : line.slice(0, i);
			let v = i < 0 ? '' : line.slice(i + 1);
			if (v[0] === ' ')
				v = v.slice(1);
			if (k === 'event')
				event = v;
			else if (k === 'id')
				id = v;
			else if (k === 'data')
				data.push(v);
		}
		if (event === 'caught-up') {
			this.failures = 0;
			this.h.onState('live', '');
			this.h.onCaughtUp();
			return event;
		}
		if (event === 'shutdown')
			return event;
		if (event !== 'message' || !data.length)
			return event;
		let ev;
		try {
			ev = JSON.parse(data.join('\n'));
		} catch {
			return event;
		}
		const n = Number(id ?? ev.id);
		if (!Number.isInteger(n) || n <= this.lastId)
			return event; // seen already: nothing is shown twice
		this.lastId = n;
		ev.id = n;
		this.h.onEvent(ev);
		return event;
	}
}
