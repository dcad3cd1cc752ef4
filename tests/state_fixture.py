"""Checkpoint fixtures: a small deterministic stream, and the facts a restore must show.

A checkpoint written by one release must be readable by the next (STYLE.md), and the
only proof is a checkpoint that release actually wrote, committed. This module makes
one with whatever code is installed, using only the public pipeline interface, so the
same script wrote ``fixtures/state/v0`` (the positional format before
``detectors/state.py``) and ``fixtures/state/v1``; a new format version gets its own
folder, and the old ones stay as they are::

    PYTHONHASHSEED=0 .venv/bin/python -m tests.state_fixture tests/fixtures/state/v2

(The hash seed fixes the last bits of cluster risks: a cluster's mean link is summed in
the iteration order of a set of account ids.)

Files written: ``shared.msgpack`` (``snapshot_shared()``), ``accounts.msgpack`` (a
msgpack map account id -> ``snapshot_accounts`` blob) and ``facts.json`` (what the
pipeline reported when it wrote them: risks, clusters, the clock). The stream is built
here, not taken from the simulator, so the fixture does not move when scenarios do.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import msgspec

from distillguard.detectors.pipeline import Pipeline, build_pipeline
from distillguard.events import RequestEvent
from distillguard.settings import get_settings

T0 = 1_790_000_000.0
HUMAN_PROMPTS = [
    "When did the eagles win their last super bowl?",
    "what is the capital city of australia",
    "How do I fix a leaking kitchen tap",
    "why is the sky blue",
    "Give me a recipe for banana bread without eggs.",
    "Explain the offside rule in football",
]


def stream() -> list[RequestEvent]:
    """A hydra (one card, one proxy pool), honest NAT users, a bulk extractor, redacted users.

    ~900 events over six hours, in event-time order: enough for a cluster alert, an
    account alert, trained population models and every kind of linkage state.
    """
    rng = random.Random(20240601)
    rows: list[dict[str, Any]] = []
    for i in range(12):  # hydra: low volume each, one card, addresses from two /24s
        for _ in range(rng.randint(4, 8)):
            rows.append(
                dict(
                    account_id=f"hydra{i}",
                    ts=T0 + rng.uniform(0, 6 * 3600),
                    payment_fingerprint="card-h",
                    ip=f"45.77.{12 + rng.randint(0, 1)}.{rng.randint(1, 254)}",
                    asn=20473,
                    user_agent="python-requests/2.31.0",
                    prompt=rng.choice(HUMAN_PROMPTS),
                )
            )
    for i in range(36):  # honest users behind one NAT, the popular SDK
        start = T0 + rng.uniform(0, 6 * 3600)
        for j in range(rng.randint(2, 6)):
            rows.append(
                dict(
                    account_id=f"student{i}",
                    ts=start + j * rng.uniform(30, 400),
                    ip="141.20.5.9",
                    asn=680,
                    user_agent="openai-python/1.54.3",
                    payment_fingerprint=f"card-s{i}",
                    system_prompt="You are a helpful assistant.",
                    prompt=rng.choice(HUMAN_PROMPTS),
                )
            )
    for i in range(450):  # one account harvesting reasoning traces in bulk
        rows.append(
            dict(
                account_id="bulk",
                ts=T0 + 4.0 * i,
                ip="203.0.113.7",
                user_agent="python-requests/2.31",
                input_tokens=40,
                output_tokens=1500,
                max_tokens=8192,
                temperature=0.0,
                org_id="org-bulk",
                prompt=f"Task {i}: write a python function for case {i}. Think step by step.",
            )
        )
    for i in range(6):  # redacted prompts: fingerprints only
        for _ in range(10):
            rows.append(
                dict(
                    account_id=f"red{i}",
                    ts=T0 + rng.uniform(0, 6 * 3600),
                    ip=f"51.15.{rng.randint(1, 3)}.{i}",
                    prompt_fingerprint=f"{rng.getrandbits(64) & 0xFFFF00000000FFFF:016x}",
                )
            )
    rows.sort(key=lambda r: r["ts"])
    defaults = dict(model="m", input_tokens=20, output_tokens=200, status=200)
    return [RequestEvent(event_id=f"e{n}", **{**defaults, **r}) for n, r in enumerate(rows)]


def fixture_pipeline() -> Pipeline:
    """The pipeline fixtures are written and read with: the linked one, shipped settings."""
    settings = get_settings()
    if settings.detectors.pipeline != "linked":
        detectors = settings.detectors.model_copy(update={"pipeline": "linked"})
        settings = settings.model_copy(update={"detectors": detectors})
    return build_pipeline(settings)


def facts(pipe: Pipeline) -> dict[str, Any]:
    """What a restored pipeline must report as the writer did (JSON-able)."""
    linkage = pipe.linkage  # type: ignore[attr-defined]
    accounts = sorted(pipe.accounts())
    return {
        "accounts": len(accounts),
        "risks": {a: pipe.risk(a).risk for a in accounts},
        "levels": {a: pipe.risk(a).level for a in accounts},
        "clusters": {a: linkage.cluster_of(a) for a in accounts if linkage.cluster_of(a)},
        "clock_now": pipe.clock.now,
        "linkage_accounts": linkage.stats()["accounts"],
    }


def write(out: Path) -> dict[str, Any]:
    """Run :func:`stream` through :func:`fixture_pipeline`, drain, checkpoint into ``out``."""
    pipe = fixture_pipeline()
    for event in stream():
        pipe.process(event)
    alerts = [a.subject_id for a in pipe.drain().alerts]
    out.mkdir(parents=True, exist_ok=True)
    (out / "shared.msgpack").write_bytes(pipe.snapshot_shared())
    per_account = pipe.snapshot_accounts(pipe.accounts())
    (out / "accounts.msgpack").write_bytes(msgspec.msgpack.encode(per_account))
    recorded = {**facts(pipe), "alert_subjects": sorted(set(alerts))}
    (out / "facts.json").write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    return recorded


if __name__ == "__main__":
    written = write(Path(sys.argv[1]))
    print(
        f"{written['accounts']} accounts, clusters {sorted(set(written['clusters'].values()))}, "
        f"alerts {written['alert_subjects']}"
    )
