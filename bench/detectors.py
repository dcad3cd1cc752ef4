"""Detector-pipeline throughput on one core, and state per tracked account.

    .venv/bin/python bench/detectors.py                    # generates `default` (~1.1M events)
    .venv/bin/python bench/detectors.py --scenario small
    .venv/bin/python bench/detectors.py --events E.jsonl --labels L.jsonl

Replays a simulated scenario (prompt text included) through the account pipeline,
timing only ``process`` in CPU seconds of this process (decoding is the edge's cost,
measured by ``make bench``'s plumbing part; CPU time because the machine is shared),
in two configurations:

- shipped: every prompt of an account's first ``text_full_events`` events analysed,
  then one in ``text_sample_every``;
- full text: every prompt analysed;
- with ``--per-event-scoring``: every event scored (what the scoring cadence saves).

For each it prints events/s and, when labels are given, the detection delay of
single-account attackers (events before the first alert), so the price of text
sampling in delay is visible next to its gain in speed. Then state per tracked
account: the msgpack snapshot's bytes per account, and the Python heap the restored
per-account state occupies (tracemalloc). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table
from scenario_data import chunks, read_labels, scenario_files

from distillguard.detectors.account_pipeline import AccountPipeline
from distillguard.settings import Detectors, get_settings

SINGLE_ACCOUNT_ARCHETYPES = {"bulk_distiller", "logprob_harvester", "release_pivot"}
console = Console(width=150)


def replay(
    config: Detectors, path: Path, limit: int | None
) -> tuple[AccountPipeline, int, float, Counter[str], dict[str, int]]:
    pipe = AccountPipeline(config)
    process = pipe.process
    n, busy = 0, 0.0
    per_account: Counter[str] = Counter()
    first_alert: dict[str, int] = {}
    for batch in chunks(path, limit):
        gc.collect()
        raised: list[int] = []  # positions in the batch of events that raised alerts
        t0 = time.process_time()  # CPU time: the machine is shared, wall time is not ours
        for i, event in enumerate(batch):
            if process(event):
                raised.append(i)
        busy += time.process_time() - t0
        n += len(batch)
        # untimed: how many of its events each alerted account had sent by then
        pending = set(raised)
        for i, event in enumerate(batch):
            account = event.account_id
            per_account[account] += 1
            if i in pending and account not in first_alert:
                first_alert[account] = per_account[account]
        pipe.drain()
    return pipe, n, busy, per_account, first_alert


def single_account_attackers(labels: dict[str, dict], per_account: Counter[str]) -> list[str]:
    benign = [per_account[a] for a, d in labels.items() if d["label"] == "benign"]
    median = statistics.median(benign) if benign else 0
    return [
        a
        for a, d in labels.items()
        if d["label"] == "distiller"
        and (d["archetype"] in SINGLE_ACCOUNT_ARCHETYPES or per_account[a] > median)
    ]


def state_per_account(pipe: AccountPipeline, config: Detectors) -> tuple[float, float, int]:
    accounts = pipe.accounts()
    t0 = time.process_time()
    blobs = pipe.snapshot_accounts(accounts)
    per_snapshot = (time.process_time() - t0) / max(1, len(accounts))
    console.print(f"snapshot_accounts: {per_snapshot * 1e6:.1f} µs CPU per account")
    snapshot_bytes = sum(len(b) for b in blobs.values()) / max(1, len(accounts))
    fresh = AccountPipeline(config)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fresh.restore_accounts(blobs)
    gc.collect()
    heap = (tracemalloc.get_traced_memory()[0] - base) / max(1, len(accounts))
    tracemalloc.stop()
    return snapshot_bytes, heap, len(accounts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--events", type=Path)
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--limit", type=int, help="replay only the first N events")
    parser.add_argument(
        "--per-event-scoring",
        action="store_true",
        help="also run with every event scored (slow: shows what the cadence saves)",
    )
    args = parser.parse_args()

    args.events, args.labels = scenario_files(args.scenario, args.events, args.labels)
    labels = read_labels(args.labels)

    shipped = get_settings().detectors
    full_text = shipped.model_copy(update={"text_full_events": 1 << 62, "text_sample_every": 1})
    table = Table(title=f"account pipeline, one core: {args.events.name}")
    for col in (
        "configuration",
        "events",
        "process CPU s",
        "events/s",
        "µs/event",
        "single-account attackers alerted",
        "median events to alert",
        "p90",
    ):
        table.add_column(col, justify="right" if col != "configuration" else "left")
    last = None
    configs = [("shipped (text sampled)", shipped), ("full text", full_text)]
    if args.per_event_scoring:
        every_event = shipped.model_copy(update={"score_every": 1, "score_interval_s": 1e-9})
        configs.append(("every event scored", every_event))
    for name, config in configs:
        pipe, n, busy, per_account, first_alert = replay(config, args.events, args.limit)
        singles = single_account_attackers(labels, per_account) if labels else []
        delays = sorted(first_alert[a] for a in singles if a in first_alert)
        table.add_row(
            name,
            f"{n:,}",
            f"{busy:.1f}",
            f"{n / busy:,.0f}",
            f"{busy / n * 1e6:.1f}",
            f"{len(delays)}/{len(singles)}" if labels else "-",
            f"{statistics.median(delays):.0f}" if delays else "-",
            f"{delays[int(0.9 * (len(delays) - 1))]}" if delays else "-",
        )
        if last is None:
            last = pipe
        else:
            del pipe
    console.print(table)

    assert last is not None
    snapshot_bytes, heap, accounts = state_per_account(last, shipped)
    whole = len(last.snapshot())
    console.print(
        f"state per tracked account ({accounts:,} accounts): "
        f"{snapshot_bytes:,.0f} B in the msgpack snapshot, "
        f"{heap:,.0f} B of Python heap (tracemalloc, restored); "
        f"whole snapshot incl. models {whole / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
