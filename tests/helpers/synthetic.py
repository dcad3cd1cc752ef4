"""Plain synthetic events for tests and benchmarks of the plumbing.

Not the traffic simulator (``distillguard simulate``): these events have no
behaviour, only valid shapes and a catalogue of malformed ones, so that the
worker's guarantees can be checked event by event. Test code, so it lives under
``tests/`` and is not shipped in the wheel; ``bench/run.py`` imports it from the checkout.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

BASE_TS = 1_795_000_000.0  # 2026-11-18, inside the decoder's clock window


def valid_event(i: int, account: str, ts: float | None = None) -> dict[str, object]:
    return {
        "event_id": f"ev-{i}",
        "ts": BASE_TS + i * 0.01 if ts is None else ts,
        "account_id": account,
        "model": "claude-x",
        "input_tokens": 100 + i % 50,
        "output_tokens": 300 + i % 200,
        "status": 200,
        "ip": f"10.0.{i % 200}.{i % 250 + 1}",
        "user_agent": "python-httpx/0.27",
        "prompt": f"Explain step by step how to solve problem {i}.",
        "temperature": 0.0,
    }


#: Each kind of bad message the worker must dead-letter, and how to make one.
MALFORMED_KINDS = (
    "invalid_utf8",
    "not_json",
    "not_object",
    "missing_field",
    "wrong_type",
    "negative_tokens",
    "ts_decades_away",
    "naive_timestamp",
    "huge_prompt",
    "bad_ip",
    "empty_account",
)


def malformed_event(i: int, kind: str, account: str) -> bytes:
    """Bytes of a bad message of the given kind (see ``MALFORMED_KINDS``)."""
    ev = valid_event(i, account)
    if kind == "invalid_utf8":
        return orjson.dumps(ev).replace(b"Explain", b"Expl\xff\xfein")
    if kind == "not_json":
        return b"event " + str(i).encode() + b" {not json"
    if kind == "not_object":
        return orjson.dumps([ev])
    if kind == "missing_field":
        del ev["model"]
    elif kind == "wrong_type":
        ev["input_tokens"] = "many"
    elif kind == "negative_tokens":
        ev["output_tokens"] = -5
    elif kind == "ts_decades_away":
        ev["ts"] = "2071-01-01T00:00:00Z"
    elif kind == "naive_timestamp":
        ev["ts"] = "2026-11-18T10:00:00"
    elif kind == "huge_prompt":
        ev["prompt"] = "x" * 300_000  # over max_prompt_chars, under the 1 MiB record limit
    elif kind == "bad_ip":
        ev["ip"] = "999.1.2.3"
    elif kind == "empty_account":
        ev["account_id"] = ""
    else:
        raise ValueError(kind)
    return orjson.dumps(ev)


@dataclass(frozen=True)
class Message:
    key: str
    value: bytes
    valid: bool
    kind: str = "valid"


def stream(
    n: int, accounts: int = 200, malformed_share: float = 0.0, seed: int = 7
) -> Iterator[Message]:
    """``n`` messages over ``accounts`` accounts, a share of them malformed of varied kinds."""
    rng = random.Random(seed)
    for i in range(n):
        account = f"acct-{rng.randrange(accounts):04d}"
        if malformed_share and rng.random() < malformed_share:
            kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
            yield Message(account, malformed_event(i, kind, account), False, kind)
        else:
            yield Message(account, orjson.dumps(valid_event(i, account)), True)
