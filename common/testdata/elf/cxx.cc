// C++ names: a static member, an overload pair and a unique function.
extern "C" {
#include "report.h"
}

namespace ns {
struct Widget {
	static int make(int x);
};
__attribute__((noinline)) int Widget::make(int x) { return x + 1; }
__attribute__((noinline)) int over(int x) { return x; }
__attribute__((noinline)) int over(double x) { return (int)x; }
__attribute__((noinline)) int unique_fn(int x, char c) { return x + c; }
} // namespace ns

int main()
{
	report("ns::Widget::make", (const void *)&ns::Widget::make);
	report("ns::over(int)", (const void *)(int (*)(int))&ns::over);
	report("ns::over(double)", (const void *)(int (*)(double))&ns::over);
	report("ns::unique_fn", (const void *)&ns::unique_fn);
	return 0;
}
