/* Ground truth for the symbol tests: the file offset at which a function
 * really is, from this process's own /proc/self/maps, with no ELF parsing.
 * Prints "NAME<TAB>0xFILE_OFFSET<TAB>0xRUNTIME_ADDRESS". */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void report(const char *name, const void *fn)
{
	uintptr_t addr = (uintptr_t)fn;
	char line[4096];
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f || !fn) {
		printf("%s\tmissing\n", name);
		return;
	}
	while (fgets(line, sizeof line, f)) {
		unsigned long start, end, off;

		if (sscanf(line, "%lx-%lx %*s %lx", &start, &end, &off) == 3 &&
		    start <= addr && addr < end) {
			printf("%s\t0x%lx\t0x%lx\n", name,
			       (unsigned long)(addr - start + off),
			       (unsigned long)addr);
			break;
		}
	}
	fclose(f);
}
