// The JSON API of breakglass-web: same origin only, a deadline on every
// call, and the headers the server's CSRF check wants on a POST.

export class ApiError extends Error {
	constructor(message, status, body) {
		super(message);
		this.status = status;
		this.body = body;
	}
}

// Paths are relative to the page's directory, so the page works behind a
// proxy that mounts it under a prefix.
function url(path) {
	return new URL(path.replace(/^\//, ''), document.baseURI).toString();
}

export async function call(method, path, body, timeoutMs = 30000) {
	const ctl = new AbortController();
	const timer = setTimeout(() => ctl.abort(), timeoutMs);
	const init = {method, credentials: 'same-origin', cache: 'no-store', signal: ctl.signal, headers: {}};
	if (method !== 'GET') {
		init.headers['Content-Type'] = 'application/json';
		init.body = JSON.stringify(body === undefined ? {} : body);
	}
	let res;
	try {
		res = await fetch(url(path), init);
	} catch (e) {
		clearTimeout(timer);
		if (e.name === 'AbortError')
			throw new ApiError(`${method} ${path}: no answer within ${Math.round(timeoutMs / 1000)} s`, 0, null);
		throw new ApiError(`${method} ${path}: the server cannot be reached (${e.message})`, 0, null);
	}
	let text = '';
	try {
		text = await res.text();
	} catch (e) {
		clearTimeout(timer);
		throw new ApiError(`${method} ${path}: the answer was cut (${e.message})`, res.status, null);
	}
	clearTimeout(timer);
	let doc = null;
	try {
		doc = text ? JSON.parse(text) : null;
	} catch {
		doc = null;
	}
	if (!res.ok) {
		const why = doc && typeof doc.error === 'string' ? doc.error : `HTTP ${res.status}`;
		throw new ApiError(why, res.status, doc);
	}
	return doc;
}

export const get = (path, timeoutMs) => call('GET', path, undefined, timeoutMs);
export const post = (path, body, timeoutMs) => call('POST', path, body, timeoutMs);
export {url};
