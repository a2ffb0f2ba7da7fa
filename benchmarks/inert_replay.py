"""Replays the tunes of finished searches through the tuner's inert rule (`Tuner.learn` / `Tuner.keep`),
in the order they were judged: how many literals the rule would have stopped tuning, and whether any of
them moved a training score in a later tune of the same program (a live constant taken for inert).

    .venv/bin/python benchmarks/inert_replay.py ENGINE_DIR [ENGINE_DIR ...]

ENGINE_DIR holds an `engine.sqlite3`: a node's `engine/` directory from a story run, or the store of
`benchmarks/evolution.py` (printed in its header). Every run in each store is replayed.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from synapse_ng.evolution.attempt import BASELINE, TUNE, Attempt
from synapse_ng.evolution.operators import Tuner
from synapse_ng.evolution.population import Population
from synapse_ng.evolution.store import Store
from synapse_ng.evolution.tuning import changed_literals, numeric_literals


def replay(attempts: list[Attempt]) -> dict[str, int]:
    """Counts for one run: correct tunes, those off the plateau that left every score unchanged, literals
    the rule stopped, and later tunes in which a stopped literal moved a score. Only judged tunes are in
    the store: the other settings of a batch, which `Tuner.learn_settings` also reads, are not, so the
    replay can only stop more literals than the search did."""
    counts = {"tunes": 0, "still": 0, "stopped": 0, "moved_after": 0}
    baseline = next((a for a in attempts if a.operator == BASELINE), None)
    if baseline is None:
        return counts
    language = baseline.language
    population = Population(1, 1, "min", language, random.Random(0), 1.0)
    population.baseline = baseline
    tuner = Tuner(population, language, random.Random(0), 1.0)
    by_id = {a.id: a for a in attempts}
    stopped: set[tuple[int | None, int]] = set()
    for tuned in attempts:
        parent = by_id.get(tuned.parent_id)
        if tuned.operator != TUNE or parent is None or not parent.scores:
            continue
        literals = numeric_literals(parent.source, language)
        changed = [literals[i].start for i in changed_literals(parent.source, tuned.source, language) or ()]
        kept = tuner.inert(parent.source)
        if tuned.correct:
            counts["tunes"] += 1
            plateau = tuner.on_plateau(parent)
            counts["still"] += not plateau and tuned.scores == parent.scores
            if tuned.scores != parent.scores and not plateau:
                counts["moved_after"] += sum(1 for start in changed if start in kept)
        tuner.learn(parent, tuned)
        for start in tuner.inert(parent.source) - kept:
            if (parent.id, start) not in stopped:
                stopped.add((parent.id, start))
                counts["stopped"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stores", type=Path, nargs="+")
    args = parser.parse_args(argv)
    for directory in args.stores:
        if not (directory / "engine.sqlite3").is_file():
            print(f"{directory}: no engine.sqlite3 there (give the directory that holds it)")
            return 2
        with Store(directory) as store:
            for run in store.list_runs(limit=1000):
                counts = replay(store.candidates(run.run_id))
                print(
                    f"{directory} run {run.run_id} ({run.component}): {counts['tunes']} correct tunes, "
                    f"{counts['still']} off the plateau with every score unchanged; the inert rule stops "
                    f"{counts['stopped']} literal(s); a stopped literal moved a score later "
                    f"{counts['moved_after']} time(s)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
