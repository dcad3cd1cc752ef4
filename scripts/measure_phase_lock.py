"""Measure phase-locking to a controller's clock on a simulated run (a measurement, not a detector).

A scheduler that sends most of a swarm's requests on its ticks leaves a period in the
pooled burst onsets of light accounts, found without knowing it: the pooled Rayleigh
power over a grid of periods (spaced so that a 12 h window stays coherent), refined
over everything seen so far. Each account is then scored by the projection of its
onsets' phases on the pooled phase, ``s = Σ cos(θ - φ) / sqrt(n / 2)``: about N(0, 1)
for an account whose onsets ignore the clock, whatever its volume, so the score is
chance-corrected for the account's own activity. Labels are read only to print the
score by archetype. Run it on tuning runs only (docs/evaluation.md):

    .venv/bin/python scripts/measure_phase_lock.py --events /tmp/dg/sw201.jsonl \\
        --labels /tmp/dg/sw201_labels.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np

from distillguard.detectors.linkage.phase import rayleigh_power

#: a burst onset: a request after this much of the account's silence (the stage's onset_gap_s)
ONSET_GAP_S = 600.0
SEARCH_S = 12 * 3600.0


def onsets_by_account(events: Path) -> dict[str, np.ndarray]:
    times: dict[str, list[float]] = defaultdict(list)
    with events.open() as f:
        for line in f:
            e = json.loads(line)
            ts = datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
            times[e["account_id"]].append(ts)
    t0 = min(min(v) for v in times.values())
    out = {}
    for account, seen in times.items():
        seen.sort()
        kept = [seen[0]] + [b for a, b in itertools.pairwise(seen) if b - a >= ONSET_GAP_S]
        out[account] = np.asarray(kept) - t0
    return out


def period_grid(window_s: float, lo: float = 60.0, hi: float = 3600.0) -> np.ndarray:
    """Periods a quarter cycle apart over ``window_s``: coherent search, no gaps."""
    ps = [lo]
    while ps[-1] < hi:
        ps.append(ps[-1] + ps[-1] ** 2 / (4 * window_s))
    return np.asarray(ps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--max-per-day", type=float, default=15.0, help="light accounts only")
    parser.add_argument("--harmonics", type=int, default=1, help="phase harmonics scored")
    args = parser.parse_args()
    labels = {}
    with args.labels.open() as f:
        for line in f:
            d = json.loads(line)
            labels[d["account_id"]] = d["archetype"]
    onsets = onsets_by_account(args.events)
    end = max(float(o[-1]) for o in onsets.values())
    light = {a: o for a, o in onsets.items() if 3 <= len(o) <= args.max_per_day * end / 86_400}
    grid = period_grid(SEARCH_S)
    print(f"{end / 86_400:.1f} days, {len(onsets)} accounts, {len(light)} light; grid {len(grid)}")
    for hours in range(24, int(end // 3600) + 24, 24):
        upto = min(hours * 3600.0, end)
        pool = np.concatenate([o[(o >= upto - SEARCH_S) & (o < upto)] for o in light.values()])
        power = rayleigh_power(pool, grid)
        best = float(grid[int(np.argmax(power))])
        seen = np.concatenate([o[o < upto] for o in light.values()])
        step = best**2 / (4 * SEARCH_S)
        fine = np.linspace(best - step, best + step, 201)
        period = float(fine[int(np.argmax(rayleigh_power(seen, fine)))])
        phase = 2 * np.pi * seen / period
        harmonics = range(1, args.harmonics + 1)
        phis = [
            math.atan2(float(np.sin(h * phase).sum()), float(np.cos(h * phase).sum()))
            for h in harmonics
        ]
        noise = math.log(len(grid))
        print(
            f"-- up to {upto / 3600:.0f} h: {len(pool)} onsets in the last 12 h, best period "
            f"{period:.2f} s, pooled power {power.max():.1f} (chance max ~{noise:.1f})"
        )
        scores: dict[str, list[float]] = defaultdict(list)
        for account, o in light.items():
            o = o[o < upto]
            if len(o) >= 3:
                theta = 2 * np.pi * o / period
                total = sum(
                    float(np.cos(h * theta - p).sum()) for h, p in zip(harmonics, phis, strict=True)
                )
                scores[labels.get(account, "?")].append(total / math.sqrt(len(o) * len(phis) / 2))
        for archetype, ss in sorted(scores.items(), key=lambda kv: -len(kv[1])):
            a = np.asarray(ss)
            print(
                f"   {archetype:18s} n={len(a):5d}  median {np.median(a):5.2f}  "
                f"max {a.max():5.2f}  >= 3: {np.mean(a >= 3):.3f}  >= 3.5: {np.mean(a >= 3.5):.3f}"
            )


if __name__ == "__main__":
    main()
