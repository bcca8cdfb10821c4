// What each verb of the forced command does, in the words shown on a
// confirmation or an approval card: the server's summary (its verb
// table, /api/pve/verbs) and, for a power verb, what it costs.
const FALLBACK = {
	status: 'state of the VM: running or stopped, pid, QMP, uptime',
	forensics: 'capture the forensics bundle (QMP, threads, host) and its verdict',
	start: 'forensics, then start the VM',
	stop: 'forensics, then stop the VM',
	reset: 'forensics, then a warm reset (same QEMU process)',
	cycle: 'forensics, stop (kill a hung QEMU), start: the recovery action for a frozen VM',
};
const COST = {
	stop: 'The guest loses whatever it was doing, and stays off.',
	reset: 'The guest reboots at once, without shutting down; a wedged QEMU stays wedged.',
	cycle: 'The guest loses whatever it was doing; a fresh QEMU starts and staged config applies.',
	start: 'The guest boots.',
};

let server = {};

export function setServerDescriptions(map) {
	server = map && typeof map === 'object' ? map : {};
}

export function verbText(verb) {
	const s = (typeof server[verb] === 'string' && server[verb]) || FALLBACK[verb] || `run "${verb}" on the Proxmox host`;
	const first = s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.');
	return COST[verb] ? `${first} ${COST[verb]}` : first;
}
