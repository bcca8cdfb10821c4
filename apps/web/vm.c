/* The VM and its two hosts (the devvm over SSH, the Proxmox host's forced
 * command). Everything that identifies them is here and handed down to
 * the handlers, so that one server can later guard several. */
#include "web.h"

#include <stdio.h>
#include <string.h>

int web_vm_init(web_vm *vm, const bg_config *cfg, const bg_secret *key)
{
	int verb_timeout = bg_app_conf_int(cfg, "pve", "verb_timeout");
	int command_timeout = bg_app_conf_int(cfg, "devvm", "command_timeout");

	memset(vm, 0, sizeof(*vm));
	vm->name = "devvm";
	vm->cfg = cfg;
	vm->ssh_key = key;
	snprintf(vm->vmid, sizeof(vm->vmid), "%s", bg_app_conf(cfg, "pve", "vmid"));
	vm->verb_timeout_s = verb_timeout > 0 ? verb_timeout : 240;
	vm->devvm_timeout_s = command_timeout > 0 ? command_timeout : 60;
	if (web_health_init(&vm->health, cfg) != 0)
		return -1;
	return pthread_mutex_init(&vm->lock, NULL) == 0 ? 0 : -1;
}

void web_vm_destroy(web_vm *vm)
{
	web_health_destroy(&vm->health);
	pthread_mutex_destroy(&vm->lock);
}

int web_vm_track(web_vm *vm, bg_ssh *ssh, int add)
{
	int i, ok = -1;

	pthread_mutex_lock(&vm->lock);
	if (add && vm->stopping) {
		pthread_mutex_unlock(&vm->lock);
		return -1;
	}
	for (i = 0; i < WEB_VM_MAX_ACTIVE; i++) {
		if (add && !vm->active[i]) {
			vm->active[i] = ssh;
			ok = 0;
			break;
		}
		if (!add && vm->active[i] == ssh) {
			vm->active[i] = NULL;
			ok = 0;
			break;
		}
	}
	pthread_mutex_unlock(&vm->lock);
	return ok;
}

void web_vm_cancel_all(web_vm *vm)
{
	int i;

	pthread_mutex_lock(&vm->lock);
	vm->stopping = 1;
	for (i = 0; i < WEB_VM_MAX_ACTIVE; i++)
		if (vm->active[i])
			bg_ssh_cancel(vm->active[i]);
	pthread_mutex_unlock(&vm->lock);
}
