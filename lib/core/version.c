#include "breakglass/common.h"
#include "bg_version.h"

const char *bg_version(void)
{
	return BG_VERSION_STRING;
}
