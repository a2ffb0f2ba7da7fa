;; gossip_protocol: choose the peers a node forwards a gossip message to.
;;
;; Fixed harness, except the EVOLVE block. When a node first receives a message it forwards it once, to
;; the peers $choose_peers picks. The host writes the node's n peers (latency ms, delivery probability,
;; ms since last contact; the peer the message just came from has contact age 0) into the f64 arrays
;; and calls select(n, fanout, seed). The chosen peer indices go to the output array (i32); select
;; returns how many. The host checks them: distinct, each in 0..n-1, at most fanout. Quality is the time
;; until 99 % of the network holds the message (lower is better), in a simulation where each send
;; arrives after the link's latency with the link's reliability as probability.
;; The block holds only (func ...) definitions: no memory, global, data, import or export declarations.
;;
;; Memory (64 KiB pages; 2 at the start, at most 1024: memory.grow may add the rest):
;;   1024 ($LATENCY), 3072 ($RELIABILITY), 5120 ($CONTACT_AGE)  256 f64 each (MAX_PEERS)
;;   7168 ($OUTPUT)  256 i32
;;   8192 ($SCRATCH) to the end of memory: the block's own, passed as $scratch
(module
(memory (export "memory") 2 1024)
(global $MAX_PEERS i32 (i32.const 256))
(global $LATENCY i32 (i32.const 1024))
(global $RELIABILITY i32 (i32.const 3072))
(global $CONTACT_AGE i32 (i32.const 5120))
(global $OUTPUT i32 (i32.const 7168))
(global $SCRATCH i32 (i32.const 8192))

;; EVOLVE-BLOCK-START
;; splitmix64: a small, good 64-bit generator: (state) -> (the new state, the next number).
(func $splitmix64 (param $state i64) (result i64 i64)
  (local $z i64)
  (local.set $state (i64.add (local.get $state) (i64.const 0x9E3779B97F4A7C15)))
  (local.set $z (i64.mul (i64.xor (local.get $state) (i64.shr_u (local.get $state) (i64.const 30))) (i64.const 0xBF58476D1CE4E5B9)))
  (local.set $z (i64.mul (i64.xor (local.get $z) (i64.shr_u (local.get $z) (i64.const 27))) (i64.const 0x94D049BB133111EB)))
  (local.get $state)
  (i64.xor (local.get $z) (i64.shr_u (local.get $z) (i64.const 31))))

;; Chooses up to $fanout distinct peers among the $n peers: writes their indices (0..n-1, i32) to
;; out[0..count) and returns count (0..fanout). f64 arrays, peer i at +8i: latency[i], ms for a
;; message to reach peer i; reliability[i], the probability that it arrives at all; contact_age[i],
;; ms since we last heard from peer i (0 for the peer we just got the message from). $seed is fixed
;; per decision: use it for any randomness. $out has 256 slots; $scratch is memory of the block's own.
;; Baseline: $fanout peers uniformly at random (a partial Fisher-Yates shuffle driven by splitmix64).
(func $choose_peers (param $latency i32) (param $reliability i32) (param $contact_age i32) (param $n i32) (param $fanout i32) (param $seed i64) (param $out i32) (param $scratch i32) (result i32)
  (local $k i32) (local $i i32) (local $at_i i32) (local $at_j i32) (local $t i32) (local $state i64) (local $next i64)
  ;; out holds the order being shuffled: out[i] = i, then out[0..k) becomes the choice.
  (loop $fill (if (i32.lt_s (local.get $i) (local.get $n)) (then
    (i32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (local.get $i))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $fill))))
  (local.set $k (select (local.get $fanout) (local.get $n) (i32.lt_s (local.get $fanout) (local.get $n))))
  (local.set $state (local.get $seed))
  (local.set $i (i32.const 0))
  (loop $choose (if (i32.lt_s (local.get $i) (local.get $k)) (then
    ;; j = i + next % (n - i), unsigned as in C; swap out[i] and out[j].
    (call $splitmix64 (local.get $state))
    (local.set $next)
    (local.set $state)
    (local.set $at_j (i32.add (local.get $out) (i32.shl (i32.add (local.get $i) (i32.wrap_i64
      (i64.rem_u (local.get $next) (i64.extend_i32_u (i32.sub (local.get $n) (local.get $i)))))) (i32.const 2))))
    (local.set $at_i (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))))
    (local.set $t (i32.load (local.get $at_i)))
    (i32.store (local.get $at_i) (i32.load (local.get $at_j)))
    (i32.store (local.get $at_j) (local.get $t))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $choose))))
  (local.get $k))
;; EVOLVE-BLOCK-END

(func $latency_ptr (export "latency_ptr") (result i32) (global.get $LATENCY))
(func $reliability_ptr (export "reliability_ptr") (result i32) (global.get $RELIABILITY))
(func $contact_age_ptr (export "contact_age_ptr") (result i32) (global.get $CONTACT_AGE))
(func $output_ptr (export "output_ptr") (result i32) (global.get $OUTPUT))

;; Returns the number of peers chosen, or -1 (negative count), -2 (count beyond the output buffer),
;; -3 (bad arguments).
(func $select (export "select") (param $n_peers i32) (param $fanout i32) (param $seed i64) (result i32)
  (local $count i32)
  (if (i32.or
        (i32.or (i32.lt_s (local.get $n_peers) (i32.const 0)) (i32.gt_s (local.get $n_peers) (global.get $MAX_PEERS)))
        (i32.or (i32.lt_s (local.get $fanout) (i32.const 0)) (i32.gt_s (local.get $fanout) (global.get $MAX_PEERS))))
    (then (return (i32.const -3))))
  (local.set $count
    (call $choose_peers
      (global.get $LATENCY) (global.get $RELIABILITY) (global.get $CONTACT_AGE)
      (local.get $n_peers) (local.get $fanout) (local.get $seed) (global.get $OUTPUT) (global.get $SCRATCH)))
  (if (i32.lt_s (local.get $count) (i32.const 0))
    (then (return (i32.const -1))))
  (if (i32.gt_s (local.get $count) (global.get $MAX_PEERS))
    (then (return (i32.const -2))))
  (local.get $count))
)
