// Iterative Fibonacci, wrapping on overflow: the same function in every sample language.
#[no_mangle]
pub extern "C" fn fib(n: i32) -> i64 {
    let (mut a, mut b) = (0i64, 1i64);
    let mut i = 0;
    while i < n {
        let next = a.wrapping_add(b);
        a = b;
        b = next;
        i += 1;
    }
    a
}
