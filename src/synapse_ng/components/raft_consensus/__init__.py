"""raft_consensus: the vote tally that closes a governance proposal (exact component, objective: fuel).

Semantics (the Python `reference` below implements them and is the oracle)
--------------------------------------------------------------------------
Input: a sequence of vote records, each ``(voter, seq, choice, weight)`` with ``voter`` and ``seq``
unsigned 32-bit integers, ``choice`` 0 = yes, 1 = no, 2 = abstain, and ``weight`` an integer in
``0..=2**20``; a ``quorum`` (integer ``0 <= quorum < 2**63``: the minimum total counted weight); a
threshold ``num/den`` (integers, ``0 < num <= den <= 65535``).

1. Per voter, exactly one record counts: the one with the highest ``seq``; among that voter's records
   with the same highest ``seq``, the LAST one in input order. Every other record is ignored.
2. ``yes``, ``no``, ``abstain`` are the sums of the weights of the counted records with that choice;
   ``turnout = yes + no + abstain`` (the sum of all counted weights).
3. ``outcome`` is 2 (no quorum) if ``turnout < quorum``; otherwise 0 (approved) if ``yes + no > 0`` and
   ``yes * den >= num * (yes + no)``; otherwise 1 (rejected). All integer arithmetic (no floats):
   with at most 2**20 records of weight at most 2**20 every product fits an i64.

Consequences worth stating: no votes give turnout 0, so "no quorum" unless quorum is 0, and then
"rejected" (yes + no == 0); all-abstain with quorum met is "rejected"; ``yes * den == num * (yes + no)``
is "approved" (the threshold is inclusive); ``turnout == quorum`` meets the quorum.

ABI (the skeleton's fixed harness, identical in Rust, C and WAT)
----------------------------------------------------------------
- ``records_ptr() -> i32``: address of a static buffer of ``MAX_VOTES + POISON_SLOTS`` records
  (``MAX_VOTES = 2**20``, ``POISON_SLOTS = 64``), each 16 bytes: four little-endian u32
  ``voter, seq, choice, weight``. The host writes the n input records at the start, then
  ``POISON_SLOTS`` plausible records of fresh voters with large weights right after them, so a tally
  that reads past its input comes out wrong.
- ``tally(n: i32, quorum: i64, num: i32, den: i32) -> i32``: runs the evolvable function on the first n
  records, writes ``yes, no, abstain, turnout`` (4 x i64) to the result buffer, checks them and returns
  the outcome (0, 1, 2) or a negative error code (see ``ERRORS``).
- ``result_ptr() -> i32``: address of the result buffer (4 x i64, 32 bytes).

The host checks everything itself anyway: the result is compared field by field with the reference,
on every case and on every measured workload. Fuel is what the sandbox counted, never what the module
says.

Modules: ``tally`` (the vote records, the result and ``reference_tally``, the oracle), ``generators``
(seeded votes, correctness cases and workloads), ``host`` (one tally call through the ABI, poison
records included) and ``component`` (the Component). The skeletons are ``skeleton.rs``, ``skeleton.c``
and ``skeleton.wat`` (in WAT, ``$tally_votes`` returns the five fields as multiple values and gets
``$scratch``: memory of its own, as C has static arrays).
"""
