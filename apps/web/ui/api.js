// The API, as the page calls it (same origin, JSON).
export async function whoami() {
	const r = await fetch("/api/whoami", { headers: { Accept: "application/json" } });
	return r.ok ? r.json() : null;
}
