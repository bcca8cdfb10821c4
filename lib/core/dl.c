/* A shared library loaded on first use (dl.h). */
#include "core/dl.h"

#include <dlfcn.h>
#include <stdio.h>

static int load(bg_dl_library *lib)
{
	void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	size_t i;

	if (!h) {
		const char *e = dlerror();
		snprintf(lib->error, sizeof(lib->error), "%s could not be loaded (%s); install %s", lib->soname,
			 e ? e : "unknown error", lib->package);
		return -1;
	}
	for (i = 0; i < lib->nsymbols; i++) {
		*lib->symbols[i].slot = dlsym(h, lib->symbols[i].name);
		if (!*lib->symbols[i].slot) {
			snprintf(lib->error, sizeof(lib->error), "%s has no %s (too old? %s is needed)", lib->soname,
				 lib->symbols[i].name, lib->package);
			dlclose(h);
			return -1;
		}
	}
	return 1;
}

int bg_dl_load(bg_dl_library *lib)
{
	int state = atomic_load_explicit(&lib->state, memory_order_acquire);

	if (state == 0) {
		pthread_mutex_lock(&lib->mu);
		state = atomic_load_explicit(&lib->state, memory_order_relaxed);
		if (state == 0) {
			state = load(lib);
			/* release: whoever sees 1 sees every pointer filled */
			atomic_store_explicit(&lib->state, state, memory_order_release);
		}
		pthread_mutex_unlock(&lib->mu);
	}
	return state == 1 ? 0 : -1;
}

const char *bg_dl_error(bg_dl_library *lib)
{
	return bg_dl_load(lib) == 0 ? "" : lib->error;
}
