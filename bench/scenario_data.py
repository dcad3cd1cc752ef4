"""Events and labels for the benchmarks: the files given, or a scenario simulated once.

Simulated files are cached in ``.distillguard/bench/`` (the simulator is seeded, so a
cached file is the same bytes a new run would write).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from distillguard.events import EventDecoder, RequestEvent
from distillguard.sim.engine import simulate
from distillguard.sim.scenario import load_scenario

CHUNK = 50_000
CACHE = Path(__file__).resolve().parent.parent / ".distillguard" / "bench"


def scenario_files(
    scenario: str, events: Path | None = None, labels: Path | None = None
) -> tuple[Path, Path | None]:
    """``(events, labels)``: the given files, else ``scenario`` simulated into the cache."""
    if events is not None:
        return events, labels
    events = CACHE / f"{scenario}.jsonl"
    labels = CACHE / f"{scenario}_labels.jsonl"
    if not (events.exists() and labels.exists()):
        t0 = time.perf_counter()
        simulate(load_scenario(scenario), events, labels)
        Console(stderr=True).print(
            f"[dim]simulated {scenario!r} in {time.perf_counter() - t0:.1f} s[/dim]"
        )
    return events, labels


def read_labels(path: Path | None) -> dict[str, dict[str, Any]]:
    """CONTRACT §2 label records by account (empty without a file)."""
    if path is None:
        return {}
    records = (orjson.loads(line) for line in path.open("rb") if line.strip())
    return {r["account_id"]: r for r in records}


def chunks(path: Path, limit: int | None = None) -> Iterator[list[RequestEvent]]:
    """Decoded events a chunk at a time (a million decoded prompts would not fit).

    The decoder's clock is pinned inside the simulated period, so a cached file stays
    valid whatever today's date.
    """
    decoder = EventDecoder(now=lambda: 1_900_000_000.0)  # after any scenario
    batch: list[RequestEvent] = []
    seen = 0
    with path.open("rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            batch.append(decoder.decode(line))
            seen += 1
            if len(batch) == CHUNK:
                yield batch
                batch = []
            if limit is not None and seen >= limit:
                break
    if batch:
        yield batch
