// What each verb of the forced command does, in the words shown on a
// confirmation or an approval card (the server's own descriptions win
// when /api/pve/verbs carries them).
export const VERB_TEXT = {
	status: 'Read the VM\'s state. Changes nothing.',
	forensics: 'Capture the evidence (QEMU process, QMP, guest agent, host) into a bundle and give a verdict. Changes nothing.',
	start: 'Start the VM (forensics are taken first).',
	stop: 'Stop the VM: the guest loses whatever it was doing (forensics are taken first).',
	reset: 'Hard-reset the guest inside the same QEMU process (warm: fixes nothing wrong in QEMU itself; forensics first).',
	cycle: 'Stop the VM, killing its QEMU if it does not stop, then start a fresh QEMU: the recovery action for a frozen VM (forensics first).',
};

let server = {};

export function setServerDescriptions(map) {
	server = map && typeof map === 'object' ? map : {};
}

export function verbText(verb) {
	const s = server[verb];
	if (typeof s === 'string' && s)
		return s;
	return VERB_TEXT[verb] || `Run "${verb}" on the Proxmox host.`;
}
