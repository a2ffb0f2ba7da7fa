"""The story's traffic: the probe never changes (it is the main job's criterion) and the live load is a
seeded stream, so a run's live inputs can be drawn again (benchmarks/rollout_shadow.py)."""

from __future__ import annotations

import hashlib
import json
from itertools import islice

from synapse_ng.story import load_batches, probe_batches


def test_the_probe_is_the_same_six_batches_it_always_was():
    # The main job's exit status compares bins on these batches before and after: a changed probe would
    # change the criterion. This digest is of the probe the runs in BENCHMARKS.md used.
    digest = hashlib.sha256(json.dumps(probe_batches()).encode()).hexdigest()
    assert digest == "c7af3594d1badcbedd29801ee36394c6ceb6596097dc8a126b7ecbd59064ad6b"


def test_the_load_is_one_seeded_stream_of_both_families_over_every_node():
    first = list(islice(load_batches(5), 200))
    # benchmarks/rollout_shadow.py draws a past run's traffic again: the stream must not change.
    digest = hashlib.sha256(json.dumps(first[:50]).encode()).hexdigest()
    assert digest == "62944372c7defb46d6262e7379756fb822af0162632f210411f854a46febdef0"
    assert first == list(islice(load_batches(5), 200))
    assert first != list(islice(load_batches(5, seed=8), 200))
    assert {to for to, _, _ in first} == set(range(5))
    families = {(capacity, len(items)) for _, capacity, items in first}
    assert families == {(100, 1000), (150, 500)}
    for _, capacity, items in first:
        low = 1 if capacity == 100 else 20
        assert all(low <= size <= 100 for size in items)
