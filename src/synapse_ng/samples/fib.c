// Iterative Fibonacci, wrapping on overflow: the same function in every sample language.
#include <stdint.h>

__attribute__((export_name("fib")))
int64_t fib(int32_t n) {
    uint64_t a = 0, b = 1;
    for (int32_t i = 0; i < n; i++) {
        uint64_t next = a + b;
        a = b;
        b = next;
    }
    return (int64_t)a;
}
