"""Publishing a JSON Lines file of events to Kafka."""

from __future__ import annotations

from pathlib import Path

import msgspec
from distillguard.stream.producer import EventPublisher
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn


class _Key(msgspec.Struct):
    account_id: str


_KEY_DECODER = msgspec.json.Decoder(_Key)


def account_key(line: bytes) -> str | None:
    """The ``account_id`` of a line, decoding only that field; None if unreadable."""
    try:
        return _KEY_DECODER.decode(line).account_id
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


def publish_file(path: Path, bootstrap: str, topic: str, progress: bool = True) -> tuple[int, int]:
    """Send every non-empty line; returns (sent, sent without a key)."""
    total = path.stat().st_size
    sent = unkeyed = 0
    with (
        EventPublisher(bootstrap, topic) as publisher,
        Progress(
            TextColumn("[bold]produce"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            disable=not progress,
        ) as bar,
        path.open("rb") as fh,
    ):
        task = bar.add_task("produce", total=total)
        for line in fh:
            bar.advance(task, len(line))
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            key = account_key(line)
            unkeyed += key is None
            publisher.send(key, line)
            sent += 1
    return sent, unkeyed
