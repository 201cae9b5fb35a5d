/* Loads a library and reports where the dynamic linker put the symbols
 * named on the command line ("name" for the default version, "name@V" for
 * a given one). For an IFUNC, dlsym gives the chosen implementation. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "report.h"

int main(int argc, char **argv)
{
	void *h = dlopen(argv[1], RTLD_NOW);

	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		char *at = strchr(argv[i], '@');
		void *p;

		if (at) {
			*at = 0;
			p = dlvsym(h, argv[i], at + 1);
			*at = '@';
		} else {
			p = dlsym(h, argv[i]);
		}
		report(argv[i], p);
	}
	return 0;
}
