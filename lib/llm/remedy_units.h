/*
 * Internal: which systemd units the restart-unit remedy may name, spelled
 * once for the target check (lib/agent/remedy.c, whoever asked) and for the
 * offline playbook, which must not ask for a restart that check refuses:
 * a failed .scope (the lab's OOM-killed scope) cannot be restarted, its
 * process is gone; a .slice or .device is no service to restart either.
 */
#ifndef BG_LLM_REMEDY_UNITS_H
#define BG_LLM_REMEDY_UNITS_H

/* 1 when the name ends in a suffix systemctl restart works on:
 * .service, .socket, .timer, .mount, .path, .swap or .target. */
int bg_remedy_unit_restartable(const char *unit);

/* Those suffixes, in words, for a refusal. */
#define BG_REMEDY_UNIT_SUFFIXES ".service, .socket, .timer, .mount, .path, .swap or .target"

#endif
