/*
 * libbreakglass — recover a wedged virtual machine when everything around
 * it is healthy.
 *
 * The umbrella header: include this, link -lbreakglass (pkg-config
 * breakglass, or CMake's breakglass::breakglass).
 */
#ifndef BREAKGLASS_H
#define BREAKGLASS_H

#include "breakglass/common.h"
#include "breakglass/config.h"
#include "breakglass/log.h"
#include "breakglass/audit.h"
#include "breakglass/secret.h"
#include "breakglass/ssh.h"
#include "breakglass/pve.h"
#include "breakglass/forensics.h"
#include "breakglass/triage.h"
#include "breakglass/llm.h"
#include "breakglass/session.h"
#include "breakglass/agent.h"

#endif
