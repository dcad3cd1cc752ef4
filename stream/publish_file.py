"""Publishing a JSON Lines file of events to Kafka, counting only what the broker acknowledged."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import msgspec
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from distillguard.stream.producer import EventPublisher, PublishFailed, RecordTooLarge


class _Key(msgspec.Struct):
    account_id: str


_KEY_DECODER = msgspec.json.Decoder(_Key)


def account_key(line: bytes) -> str | None:
    """The ``account_id`` of a line, decoding only that field; None if unreadable."""
    try:
        return _KEY_DECODER.decode(line).account_id
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


def publish_lines(bootstrap: str, topic: str, lines: Iterable[bytes]) -> int:
    """Publish event lines as they are, keyed by account (tests, benchmarks); returns
    how many the broker acknowledged (:class:`PublishFailed` if any was refused)."""
    n = 0
    with EventPublisher(bootstrap, topic) as pub:
        for line in lines:
            pub.send(account_key(line), line)
            n += 1
    return n


def publish_file(
    path: Path,
    bootstrap: str,
    topic: str,
    progress: bool = True,
    *,
    max_request_size: int | None = None,
) -> tuple[int, int]:
    """Send every non-empty line; returns (sent, sent without a key), both confirmed.

    Every line counts only once the broker acknowledged it. A line bigger than the
    record limit (``max_request_size``, default settings ``topics.max_message_bytes``)
    is not sent; it and any line the broker did not acknowledge make this raise
    :class:`PublishFailed` at the end, saying how many of how many lines were
    published, so ``distillguard produce`` exits non-zero instead of over-reporting.
    """
    if max_request_size is None:
        from distillguard.settings import get_settings

        max_request_size = get_settings().topics.max_message_bytes
    total = path.stat().st_size
    lines = unkeyed = too_large = 0
    first_error: str | None = None
    with (
        EventPublisher(bootstrap, topic, max_request_size=max_request_size) as publisher,
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
        for number, line in enumerate(fh, start=1):
            bar.advance(task, len(line))
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            lines += 1
            key = account_key(line)
            try:
                publisher.send(key, line)
            except RecordTooLarge as exc:
                too_large += 1
                first_error = first_error or f"line {number}: {exc}"
                continue
            unkeyed += key is None
        try:
            sent = publisher.flush()
        except PublishFailed as exc:
            failed = too_large + exc.failed
            raise PublishFailed(
                failed, lines, first_error or exc.first_error, f"lines of {path}"
            ) from exc
    if too_large:
        assert first_error is not None
        raise PublishFailed(too_large, lines, first_error, f"lines of {path}")
    return sent, unkeyed
