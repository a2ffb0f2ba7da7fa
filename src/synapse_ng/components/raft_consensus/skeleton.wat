;; raft_consensus: the vote tally that closes a governance proposal.
;; Fixed harness: the memory, the record and result buffers and the exported entry points. Only the
;; block between the EVOLVE markers may change: it must define $tally_votes with the same signature,
;; and only (func ...) definitions (no memory, global, data, import or export declarations).
;;
;; Semantics: per voter only the record with the highest `seq` counts; among that voter's records with
;; the same highest `seq`, the LAST one in the array counts. yes/no/abstain = sums of the weights of the
;; counted records by choice (0 yes, 1 no, 2 abstain); turnout = yes + no + abstain. outcome = 2 (no
;; quorum) if turnout < quorum, else 0 (approved) if yes + no > 0 and yes * den >= num * (yes + no),
;; else 1 (rejected). Weights are at most 2^20 and there are at most 2^20 records: i64 never overflows.
;; voter and seq are unsigned 32-bit (compare them with the _u instructions).
;;
;; Memory (64 KiB pages; 513 at the start, at most 1024: memory.grow may add the rest):
;;   1024 ($RESULT)   4 x i64 yes, no, abstain, turnout, written by the harness
;;   4096 ($RECORDS)  2^20 + 64 records of 16 bytes: four u32 voter, seq, choice, weight; the host
;;                    writes n records, then 64 poison records (fresh voters, big weights) after them
;;   16842752 ($SCRATCH, 257 pages) to the end of memory: the block's own, passed as $scratch
(module
(memory (export "memory") 513 1024)
(global $MAX_VOTES i32 (i32.const 1048576))
(global $RESULT i32 (i32.const 1024))
(global $RECORDS i32 (i32.const 4096))
(global $SCRATCH i32 (i32.const 16842752))

;; EVOLVE-BLOCK-START
;; Baseline: a table at $scratch of 16-byte entries (voter, best seq, index of the counted record),
;; one per distinct voter, searched linearly for every record (O(records x voters)); then the counted
;; records are summed. Returns yes, no, abstain, turnout, outcome (the C skeleton's Tally, in order).
(func $tally_votes (param $records i32) (param $n i32) (param $quorum i64) (param $num i64) (param $den i64) (param $scratch i32) (result i64 i64 i64 i64 i32)
  (local $i i32) (local $r i32) (local $k i32) (local $e i32) (local $voters i32) (local $c i32)
  (local $w i64) (local $yes i64) (local $no i64) (local $abstain i64)
  (loop $record (if (i32.lt_u (local.get $i) (local.get $n)) (then
    ;; Record i (u32 voter, seq, choice, weight) and the entry k of its voter (k == $voters: none).
    (local.set $r (i32.add (local.get $records) (i32.shl (local.get $i) (i32.const 4))))
    (local.set $k (i32.const 0))
    (block $found (loop $search
      (local.set $e (i32.add (local.get $scratch) (i32.shl (local.get $k) (i32.const 4))))
      (br_if $found (i32.eq (local.get $k) (local.get $voters)))
      (br_if $found (i32.eq (i32.load (local.get $e)) (i32.load (local.get $r))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $search)))
    (if (i32.eq (local.get $k) (local.get $voters)) (then  ;; a new voter, at seq 0 <= any seq
      (i32.store (local.get $e) (i32.load (local.get $r)))
      (i32.store offset=4 (local.get $e) (i32.const 0))
      (local.set $voters (i32.add (local.get $voters) (i32.const 1)))))
    ;; `>=` (unsigned): among a voter's records with the highest seq, the last one counts.
    (if (i32.ge_u (i32.load offset=4 (local.get $r)) (i32.load offset=4 (local.get $e))) (then
      (i32.store offset=4 (local.get $e) (i32.load offset=4 (local.get $r)))
      (i32.store offset=8 (local.get $e) (local.get $i))))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $record))))
  ;; Sum the weights of the counted records by choice: 0 yes, 1 no, 2 abstain.
  (local.set $k (i32.const 0))
  (loop $voter (if (i32.lt_u (local.get $k) (local.get $voters)) (then
    (local.set $e (i32.add (local.get $scratch) (i32.shl (local.get $k) (i32.const 4))))
    (local.set $r (i32.add (local.get $records) (i32.shl (i32.load offset=8 (local.get $e)) (i32.const 4))))
    (local.set $c (i32.load offset=8 (local.get $r)))
    (local.set $w (i64.load32_u offset=12 (local.get $r)))
    (if (i32.eqz (local.get $c)) (then (local.set $yes (i64.add (local.get $yes) (local.get $w)))))
    (if (i32.eq (local.get $c) (i32.const 1)) (then (local.set $no (i64.add (local.get $no) (local.get $w)))))
    (if (i32.gt_u (local.get $c) (i32.const 1)) (then (local.set $abstain (i64.add (local.get $abstain) (local.get $w)))))
    (local.set $k (i32.add (local.get $k) (i32.const 1)))
    (br $voter))))
  ;; turnout = yes + no + abstain; outcome 2 (no quorum), 0 (approved) or 1 (rejected), as in C.
  (local.set $w (i64.add (local.get $yes) (local.get $no)))
  (local.get $yes) (local.get $no) (local.get $abstain) (i64.add (local.get $w) (local.get $abstain))
  (if (result i32) (i64.lt_s (i64.add (local.get $w) (local.get $abstain)) (local.get $quorum)) (then (i32.const 2))
    (else (select (i32.const 0) (i32.const 1) (i32.and (i64.gt_s (local.get $w) (i64.const 0))
      (i64.ge_s (i64.mul (local.get $yes) (local.get $den)) (i64.mul (local.get $num) (local.get $w))))))))
;; EVOLVE-BLOCK-END

;; The buffers' addresses: the host writes the records and reads the result.
(func $records_ptr (export "records_ptr") (result i32) (global.get $RECORDS))
(func $result_ptr (export "result_ptr") (result i32) (global.get $RESULT))

;; Returns the outcome (0, 1, 2), or -1 (bad n), -2 (bad threshold), -3 (negative quorum) for bad
;; arguments, and -4 (a total outside 0..n*2^20), -5 (turnout != yes + no + abstain), -6 (outcome
;; outside 0..2) for a result of $tally_votes that cannot be right.
(func $tally (export "tally") (param $n i32) (param $quorum i64) (param $num i32) (param $den i32) (result i32)
  (local $yes i64) (local $no i64) (local $abstain i64) (local $turnout i64) (local $outcome i32)
  (local $cap i64)
  (if (i32.or (i32.lt_s (local.get $n) (i32.const 0)) (i32.gt_s (local.get $n) (global.get $MAX_VOTES)))
    (then (return (i32.const -1))))
  (if (i32.or
        (i32.or (i32.le_s (local.get $num) (i32.const 0)) (i32.le_s (local.get $den) (i32.const 0)))
        (i32.or (i32.gt_s (local.get $num) (local.get $den)) (i32.gt_s (local.get $den) (i32.const 65535))))
    (then (return (i32.const -2))))
  (if (i64.lt_s (local.get $quorum) (i64.const 0))
    (then (return (i32.const -3))))
  (call $tally_votes
    (global.get $RECORDS) (local.get $n) (local.get $quorum)
    (i64.extend_i32_s (local.get $num)) (i64.extend_i32_s (local.get $den)) (global.get $SCRATCH))
  (local.set $outcome)
  (local.set $turnout)
  (local.set $abstain)
  (local.set $no)
  (local.set $yes)
  (i64.store (global.get $RESULT) (local.get $yes))
  (i64.store offset=8 (global.get $RESULT) (local.get $no))
  (i64.store offset=16 (global.get $RESULT) (local.get $abstain))
  (i64.store offset=24 (global.get $RESULT) (local.get $turnout))
  ;; Each total in 0..=n * 2^20: an unsigned comparison catches a negative one too.
  (local.set $cap (i64.shl (i64.extend_i32_u (local.get $n)) (i64.const 20)))
  (if (i32.or
        (i32.or (i64.gt_u (local.get $yes) (local.get $cap)) (i64.gt_u (local.get $no) (local.get $cap)))
        (i32.or (i64.gt_u (local.get $abstain) (local.get $cap)) (i64.gt_u (local.get $turnout) (local.get $cap))))
    (then (return (i32.const -4))))
  (if (i64.ne (i64.add (i64.add (local.get $yes) (local.get $no)) (local.get $abstain)) (local.get $turnout))
    (then (return (i32.const -5))))
  (if (i32.gt_u (local.get $outcome) (i32.const 2))
    (then (return (i32.const -6))))
  (local.get $outcome))
)
