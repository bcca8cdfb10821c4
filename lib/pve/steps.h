/* Internal: the steps of a verb (bg_pve_step, public in breakglass/pve.h),
 * shared by the host that records them and the client that reads them. */
#ifndef BG_PVE_STEPS_H
#define BG_PVE_STEPS_H

#include "breakglass/pve.h"

/* Free each step's strings and the array itself. */
void bg_pve_steps_free(bg_pve_step *steps, size_t n);

#endif
