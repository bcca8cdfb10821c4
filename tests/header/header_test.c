/* Compiled with -pedantic -Werror as C99 and C11: the umbrella header must
 * stand alone. */
#include <breakglass.h>

int bg_header_test_uses_api(void);
int bg_header_test_uses_api(void)
{
	return bg_version() != 0 && bg_strerror(BG_OK) != 0;
}
