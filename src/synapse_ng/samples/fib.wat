;; Iterative Fibonacci, wrapping on overflow: the same function in every sample language.
(module
  (memory (export "memory") 1 1)
  (func (export "fib") (param $n i32) (result i64)
    (local $a i64) (local $b i64) (local $next i64) (local $i i32)
    (local.set $b (i64.const 1))
    (block $done
      (loop $step
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $next (i64.add (local.get $a) (local.get $b)))
        (local.set $a (local.get $b))
        (local.set $b (local.get $next))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $step)))
    (local.get $a)))
