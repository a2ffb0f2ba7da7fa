"""task_allocation: online bin packing under the FunSearch protocol (a heuristic component).

The protocol (FunSearch, Romera-Paredes et al. 2023, Table 1), reproduced exactly:

- an instance is a capacity and a list of item sizes (integers, 1 <= size <= capacity);
- there are as many bins as items, all at full capacity to begin with;
- items arrive one at a time; every bin that can still hold the item (remaining >= size, used or not,
  in bin order) is offered to ``priority(item, bins)``, which scores them all at once;
- the item goes to the highest-scoring bin, the first one (lowest bin index) on ties;
- the score of a run is the number of bins used (remaining < capacity); a workload's metric is the mean
  over its instances, and its excess is (mean bins - mean L1) / mean L1 with L1 = ceil(sum / capacity).

The packing loop runs inside the module: one host call per instance. ABI (every language):

- ``items_ptr() -> i32``: where the host writes the n item sizes (i32, little-endian);
- ``assignment_ptr() -> i32``: where the module leaves the chosen bin (i32, 0..n-1) of every item;
- ``error_ptr() -> i32``: four i32 of detail when ``pack`` fails (below);
- ``pack(n_items, capacity) -> i32``: packs; returns the number of bins used, or a negative error code:
  -1 bad arguments (detail: n_items, capacity, the bad item's index or -1, 0), -2 priority returned the
  wrong number of scores (Rust only; detail: item, bins offered, scores returned, 0), -3 a score that is
  not finite (detail: item, position among the bins offered, bins offered, 0 NaN / 1 +inf / 2 -inf),
  -4 no bin could hold an item, which only a module that wrecks its own bin state can reach (detail: item).

Capacity and sizes are passed as integers and handed to ``priority`` as f64 (exact below 2**53). The
skeletons keep their buffers out of the block's reach by name where the language can (Rust: a private
``mod harness`` after the block; C: statics declared after the block; WAT: the buffers' addresses are
declared after the block, though WAT names reach the whole module, and the block gets a ``$scratch``
region of its own); a raw module can of course do anything, hence the checks.

Nothing the module says is trusted: the host reads the assignment back and checks it (every item in a
bin that exists, no bin over capacity), recounts the bins from it, and refuses a run whose reported
count disagrees. The best-fit baseline reproduces the published figures exactly: 212.0 bins (5.37 %
over L1) on OR3 and 2067.0 bins (3.98 %) on Weibull 5k.

Workload figures stay against L1, as published. Production does not: a node measures each live packing
against the Martello–Toth L2 bound (``l2_bound``), which is never below L1 and is tight where L1 is
weakest (items just over half a bin), so inputs crafted to make L1 look bad show no phantom excess.

Modules: ``protocol`` (the protocol in Python: priorities, the packing loop, validation), ``bounds`` (L1 and
L2 lower bounds), ``generators`` (training instances and correctness cases), ``datasets`` (the held-out
FunSearch sets shipped in ``data/``), ``host`` (one pack call through the module's ABI) and ``component``
(the Component). The skeletons are ``skeleton.rs``, ``skeleton.c`` and ``skeleton.wat``.
"""
