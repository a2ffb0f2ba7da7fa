;; task_allocation: online bin packing under the FunSearch protocol.
;;
;; Fixed harness, except the EVOLVE block. The host writes n item sizes (i32) at items_ptr() and calls
;; pack(n, capacity). There are n bins, all at full capacity at first. For each item in turn, every bin
;; that can still hold it (remaining >= item, used or not, in bin order) is passed to $priority, and the
;; item goes to the bin with the highest score (the first one on ties). The chosen bin of each item is
;; written at assignment_ptr(); pack returns the number of bins used, or a negative error code. The host
;; checks the assignment and recounts the bins itself: an invalid packing scores nothing.
;; The block holds only (func ...) definitions: no memory, global, data, import or export declarations.
;; Memory: 8 pages of 64 KiB at the start, at most 1024 (memory.grow may add the rest). The harness's
;; buffers lie below 393216; from there ($scratch) to the end of memory is the block's own.
(module
(memory (export "memory") 8 1024)

;; EVOLVE-BLOCK-START
;; Scores the $n bins that can hold $item: bins[k] (f64 at $bins + 8k) is the remaining capacity of the
;; k-th of them, in bin order (unused bins, at full capacity, included). Writes one finite score per
;; bin to scores[k] (f64 at $scores + 8k; scores not written stay NaN and are refused); the item goes
;; to the highest score, the first one on ties. Fewer bins used in the end is better. $scratch: memory
;; the block may use as it likes, up to the end of memory.
;; Baseline: best fit, the bin the item fills most tightly: score = -(remaining - item).
(func $priority (param $item f64) (param $bins i32) (param $n i32) (param $scores i32) (param $scratch i32)
  (local $k i32) (local $offset i32)
  (block $done
    (loop $each_bin
      (br_if $done (i32.ge_s (local.get $k) (local.get $n)))
      (local.set $offset (i32.shl (local.get $k) (i32.const 3)))
      (f64.store (i32.add (local.get $scores) (local.get $offset))
        (f64.neg (f64.sub (f64.load (i32.add (local.get $bins) (local.get $offset))) (local.get $item))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $each_bin))))
;; EVOLVE-BLOCK-END

;; The harness. Its buffers are declared after the block and handed to $priority as it needs them.
(global $MAX_ITEMS i32 (i32.const 10000))
(global $ITEMS i32 (i32.const 1024))  ;; i32[10000]
(global $ASSIGNMENT i32 (i32.const 41024))  ;; i32[10000]
(global $ERROR i32 (i32.const 81024))  ;; i32[4]
(global $REMAINING i32 (i32.const 81920))  ;; f64[10000]
(global $FEASIBLE i32 (i32.const 161920))  ;; f64[10000]
(global $FEASIBLE_BIN i32 (i32.const 241920))  ;; i32[10000]
(global $SCORES i32 (i32.const 281920))  ;; f64[10000], up to 361920
(global $SCRATCH i32 (i32.const 393216))

;; The addresses the host writes the items to and reads the assignment (and an error) from.
(func $items_ptr (export "items_ptr") (result i32) (global.get $ITEMS))
(func $assignment_ptr (export "assignment_ptr") (result i32) (global.get $ASSIGNMENT))
(func $error_ptr (export "error_ptr") (result i32) (global.get $ERROR))

(func $fail (param $code i32) (param $a i32) (param $b i32) (param $c i32) (param $d i32) (result i32)
  (i32.store (global.get $ERROR) (local.get $a))
  (i32.store offset=4 (global.get $ERROR) (local.get $b))
  (i32.store offset=8 (global.get $ERROR) (local.get $c))
  (i32.store offset=12 (global.get $ERROR) (local.get $d))
  (local.get $code))

;; Returns the bins used, or -1 (bad arguments), -3 (a score that is not finite), -4 (no bin holds an
;; item: the bin state was overwritten); the detail is at error_ptr().
(func $pack (export "pack") (param $n_items i32) (param $capacity i32) (result i32)
  (local $n i32) (local $full f64) (local $i i32) (local $j i32) (local $k i32) (local $m i32)
  (local $size i32) (local $item f64) (local $remaining f64) (local $score f64) (local $best i32)
  (local $best_score f64) (local $bin i32) (local $used i32)
  (drop (call $fail (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
  (if (i32.or
        (i32.or (i32.lt_s (local.get $n_items) (i32.const 0)) (i32.gt_s (local.get $n_items) (global.get $MAX_ITEMS)))
        (i32.lt_s (local.get $capacity) (i32.const 1)))
    (then
      (return (call $fail (i32.const -1) (local.get $n_items) (local.get $capacity) (i32.const -1) (i32.const 0)))))
  (local.set $n (local.get $n_items))
  (local.set $full (f64.convert_i32_s (local.get $capacity)))
  (block $reset_done
    (loop $reset
      (br_if $reset_done (i32.ge_s (local.get $j) (local.get $n)))
      (f64.store (i32.add (global.get $REMAINING) (i32.shl (local.get $j) (i32.const 3))) (local.get $full))
      (i32.store (i32.add (global.get $ASSIGNMENT) (i32.shl (local.get $j) (i32.const 2))) (i32.const -1))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $reset)))
  (block $items_done
    (loop $each_item
      (br_if $items_done (i32.ge_s (local.get $i) (local.get $n)))
      (local.set $size (i32.load (i32.add (global.get $ITEMS) (i32.shl (local.get $i) (i32.const 2)))))
      (if (i32.or (i32.lt_s (local.get $size) (i32.const 1)) (i32.gt_s (local.get $size) (local.get $capacity)))
        (then
          (return (call $fail (i32.const -1) (local.get $n_items) (local.get $capacity) (local.get $i) (i32.const 0)))))
      (local.set $item (f64.convert_i32_s (local.get $size)))
      ;; The bins that can hold the item, in bin order.
      (local.set $m (i32.const 0))
      (local.set $j (i32.const 0))
      (block $offer_done
        (loop $offer
          (br_if $offer_done (i32.ge_s (local.get $j) (local.get $n)))
          (local.set $remaining (f64.load (i32.add (global.get $REMAINING) (i32.shl (local.get $j) (i32.const 3)))))
          (if (f64.ge (local.get $remaining) (local.get $item))
            (then
              (f64.store (i32.add (global.get $FEASIBLE) (i32.shl (local.get $m) (i32.const 3))) (local.get $remaining))
              (i32.store (i32.add (global.get $FEASIBLE_BIN) (i32.shl (local.get $m) (i32.const 2))) (local.get $j))
              (local.set $m (i32.add (local.get $m) (i32.const 1)))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $offer)))
      (if (i32.eqz (local.get $m))
        (then
          (return (call $fail (i32.const -4) (local.get $i) (i32.const 0) (i32.const 0) (i32.const 0)))))
      ;; Scores start as NaN, so a score the block does not write is refused.
      (local.set $k (i32.const 0))
      (block $clear_done
        (loop $clear
          (br_if $clear_done (i32.ge_s (local.get $k) (local.get $m)))
          (f64.store (i32.add (global.get $SCORES) (i32.shl (local.get $k) (i32.const 3))) (f64.const nan))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br $clear)))
      (call $priority (local.get $item) (global.get $FEASIBLE) (local.get $m) (global.get $SCORES) (global.get $SCRATCH))
      ;; The first highest score; every score must be finite.
      (local.set $best (i32.const 0))
      (local.set $best_score (f64.const 0))
      (local.set $k (i32.const 0))
      (block $scan_done
        (loop $scan
          (br_if $scan_done (i32.ge_s (local.get $k) (local.get $m)))
          (local.set $score (f64.load (i32.add (global.get $SCORES) (i32.shl (local.get $k) (i32.const 3)))))
          ;; |score| < inf is false for NaN and for either infinity.
          (if (i32.eqz (f64.lt (f64.abs (local.get $score)) (f64.const inf)))
            (then
              (return
                (call $fail (i32.const -3) (local.get $i) (local.get $k) (local.get $m)
                  (select
                    (i32.const 0)
                    (select (i32.const 1) (i32.const 2) (f64.gt (local.get $score) (f64.const 0)))
                    (f64.ne (local.get $score) (local.get $score)))))))
          (if (i32.or (i32.eqz (local.get $k)) (f64.gt (local.get $score) (local.get $best_score)))
            (then
              (local.set $best (local.get $k))
              (local.set $best_score (local.get $score))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br $scan)))
      (local.set $bin (i32.load (i32.add (global.get $FEASIBLE_BIN) (i32.shl (local.get $best) (i32.const 2)))))
      (f64.store (i32.add (global.get $REMAINING) (i32.shl (local.get $bin) (i32.const 3)))
        (f64.sub
          (f64.load (i32.add (global.get $REMAINING) (i32.shl (local.get $bin) (i32.const 3))))
          (local.get $item)))
      (i32.store (i32.add (global.get $ASSIGNMENT) (i32.shl (local.get $i) (i32.const 2))) (local.get $bin))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each_item)))
  ;; The bins used: those below full capacity.
  (local.set $j (i32.const 0))
  (block $count_done
    (loop $count
      (br_if $count_done (i32.ge_s (local.get $j) (local.get $n)))
      (if (f64.lt (f64.load (i32.add (global.get $REMAINING) (i32.shl (local.get $j) (i32.const 3)))) (local.get $full))
        (then (local.set $used (i32.add (local.get $used) (i32.const 1)))))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $count)))
  (local.get $used))
)
