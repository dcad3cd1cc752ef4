"""The feedback stream: analysts' verdicts, in order, for the detectors to learn from.

Key :data:`FEEDBACK_STREAM` (a Redis stream; field ``label`` holds a JSON
``records.Label``). The API appends on review; the worker polls with
:func:`read_labels` and keeps the returned id as its position, so every label is
learnt once and a restarted worker can resume from a saved id.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import msgspec
import redis

from distillguard.records import Label, dumps, loads
from distillguard.store.connection import text
from distillguard.store.schema import FEEDBACK_STREAM, STREAM_MAXLEN

__all__ = ["FEEDBACK_STREAM", "queue_label", "read_labels"]

log = logging.getLogger(__name__)


def queue_label(pipe: Any, label: Label) -> None:
    """Queue the append on a (sync or async) pipeline, inside the caller's transaction."""
    pipe.xadd(FEEDBACK_STREAM, {"label": dumps(label)}, maxlen=STREAM_MAXLEN, approximate=True)


def read_labels(
    client: redis.Redis, last_id: str = "0-0", count: int = 1000
) -> tuple[list[Label], str]:
    """Labels appended after ``last_id`` (at most ``count``) and the id to pass next time.

    Non-blocking. An entry that does not decode is logged and skipped, and the
    position still advances past it, so one bad entry cannot wedge the reader.
    """
    # (id, fields) pairs; redis-py's reply type also allows None, which Redis never sends
    entries = cast(
        "list[tuple[bytes | str, dict[bytes | str, bytes | str]]]",
        client.xrange(FEEDBACK_STREAM, min=f"({last_id}", max="+", count=count),
    )
    labels: list[Label] = []
    for entry_id, fields in entries:
        last_id = text(entry_id)
        raw = fields.get(b"label", fields.get("label"))
        try:
            if raw is None:
                raise TypeError("entry has no label field")
            labels.append(loads(raw, Label))
        except (msgspec.DecodeError, TypeError) as exc:
            log.warning("skipping undecodable feedback entry %s: %s", last_id, exc)
    return labels, last_id
