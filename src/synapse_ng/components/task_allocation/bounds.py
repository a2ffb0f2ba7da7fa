"""Lower bounds on the number of bins: L1 for the published figures, Martello–Toth L2 for production."""

from __future__ import annotations

import bisect
from collections.abc import Sequence


def l1_bound(items: Sequence[int], capacity: int) -> int:
    """The L1 lower bound: ceil(sum of sizes / capacity). The FunSearch protocol's figures are published
    against it, so workload measurements (``measure``) keep using it; production uses ``l2_bound``."""
    return -(-sum(items) // capacity)


def l2_bound(items: Sequence[int], capacity: int) -> int:
    """The Martello–Toth L2 lower bound on the number of bins, always >= ``l1_bound``.

    For an integer alpha in [0, C/2] (C the capacity), split the items into J1 (size > C - alpha),
    J2 (C - alpha >= size > C/2) and J3 (C/2 >= size >= alpha). No two items of J1 ∪ J2 share a bin and
    no J3 item fits beside a J1 item, so at least
        L(alpha) = |J1| + |J2| + max(0, ceil((sum(J3) - (|J2| C - sum(J2))) / C))
    bins are needed; L2 is the largest L(alpha). Within an interval of alpha where J3 stays the same, L
    only grows with alpha (items move from J2 to J1, taking their free room with them), so it is enough
    to try alpha = 0 and the distinct item sizes <= C/2. L(0) = max(|J2|, L1) >= L1.

    Where L1 is weak, L2 is tight: n items of size 51 in bins of 100 give L1 = ceil(0.51 n) but L2 = n,
    which is what best fit uses. The production objective measures excess over L2, so an input shaped
    like that shows no excess to chase. O(n log n): one sort, prefix sums and binary searches.
    """
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity}")
    if not items:
        return 0
    sizes = sorted(items)
    prefix = [0]
    for size in sizes:
        prefix.append(prefix[-1] + size)
    n = len(sizes)
    half = capacity // 2  # for integers: size <= C/2 <=> size <= C // 2, size > C/2 <=> size > C // 2
    big_from = bisect.bisect_right(sizes, half)  # sizes[big_from:] are the items > C/2
    best = -(-prefix[n] // capacity)  # L1: also covers sizes above the capacity, which no bin holds
    alphas = [0]
    alphas.extend(size for k, size in enumerate(sizes[:big_from]) if k == 0 or size != sizes[k - 1])
    for alpha in alphas:
        j1_from = bisect.bisect_right(sizes, capacity - alpha)  # sizes[j1_from:] > C - alpha
        j2_count = j1_from - big_from
        j2_sum = prefix[j1_from] - prefix[big_from]
        j3_from = bisect.bisect_left(sizes, alpha)
        j3_sum = prefix[big_from] - prefix[j3_from]
        spill = j3_sum - (j2_count * capacity - j2_sum)
        bound = (n - big_from) + max(0, -(-spill // capacity))
        if bound > best:
            best = bound
    return best
