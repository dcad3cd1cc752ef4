"""Print each attacker variant's traces next to honest accounts of like volume.

The figures in docs/adversaries.md come from this script, on a *tuning* run (looking at
a held-out run to write the docs would make it a tuning run):

    .venv/bin/python scripts/measure_traces.py --scenario adaptive --seed 101 --corpus-split tuning
"""

from __future__ import annotations

import argparse
import math

from distillguard.sim.engine import generate
from distillguard.sim.scenario import load_scenario
from distillguard.sim.traces import trace_table


def _f(x: object, digits: int = 2) -> str:
    if isinstance(x, float):
        return "—" if math.isnan(x) else f"{x:.{digits}f}"
    return str(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="adaptive")
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--corpus-split", default="tuning")
    args = parser.parse_args()
    spec = load_scenario(args.scenario, seed=args.seed, corpus_split=args.corpus_split)
    print(
        "| variant | accounts | requests/day (median) | sync: variant / background | "
        "item collisions: observed / if independent | sweeps | item dispersion | "
        "exact repeats | daily CV |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in trace_table(generate(spec)):
        print(
            f"| {r['variant']} | {r['accounts']} | {_f(r['per_day'], 1)} | "
            f"{_f(r['sync'])} / {_f(r['sync_background'])} | "
            f"{r['collisions']} / {_f(r['collisions_expected'], 0)} | {_f(r['sweeps'], 1)} | "
            f"{_f(r['dispersion'])} | {_f(r['repeat'])} | {_f(r['daily_cv'])} |"
        )


if __name__ == "__main__":
    main()
