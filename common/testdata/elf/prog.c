/* An executable, built PIE, non-PIE and stripped by the tests. With an
 * argument it waits for stdin to close, so a test can look at it from
 * outside (maps, symbolization, mount namespaces). */
#include <unistd.h>
#include "report.h"

__attribute__((noinline)) int ft_alpha(int x) { return x * 7 + 1; }
__attribute__((noinline)) int ft_beta(int x) { return ft_alpha(x) ^ 0x55; }
static __attribute__((noinline)) int ft_local(int x) { return ft_beta(x) - 3; }

int main(int argc, char **argv)
{
	char c;
	volatile int sink = ft_local(argc);

	(void)sink;
	(void)argv;
	report("ft_alpha", (const void *)ft_alpha);
	report("ft_beta", (const void *)ft_beta);
	report("ft_local", (const void *)ft_local);
	report("main", (const void *)main);
	fflush(stdout);
	if (argc > 1)
		while (read(0, &c, 1) > 0)
			;
	return 0;
}
