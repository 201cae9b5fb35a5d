/* A shared library with a plain function, a symbol in two versions
 * (ft_ver@V1 and the default ft_ver@@V2) and an IFUNC (ft_ifunc) whose
 * resolver picks ft_ifunc_fast. */
int ft_lib_func(int x) { return x * 3; }

int ft_ver_v1(int x) { return x + 1; }
int ft_ver_v2(int x) { return x + 2; }
__asm__(".symver ft_ver_v1, ft_ver@V1");
__asm__(".symver ft_ver_v2, ft_ver@@V2");

int ft_ifunc_fast(int x) { return x * 2; }
int ft_ifunc_slow(int x) { return x + x; }
static int use_fast = 1;
void *ft_ifunc_resolver(void)
{
	return use_fast ? (void *)ft_ifunc_fast : (void *)ft_ifunc_slow;
}
int ft_ifunc(int) __attribute__((ifunc("ft_ifunc_resolver")));
