"""``distillguard worker`` and ``distillguard produce``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distillguard.settings import get_settings


def worker(
    max_idle: Annotated[
        float | None,
        typer.Option(help="Exit after this many seconds without records (default: run forever)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    stage: Annotated[
        str | None,
        typer.Option(
            help="all (one process), account (N processes, forward linkage evidence) or"
            " cluster (one process: clusters and cluster alerts); default worker.stage."
        ),
    ] = None,
) -> None:
    """Consume api-requests, run the detectors, keep state in Redis; stop with Ctrl-C/SIGTERM."""
    from distillguard.detectors.pipeline import build_pipeline
    from distillguard.logs import setup_logging
    from distillguard.stream.sinks import default_sink
    from distillguard.stream.worker import Worker, WorkerError

    setup_logging(log_level)
    settings = get_settings()
    if stage is not None:
        if stage not in ("all", "account", "cluster"):
            typer.echo(f"distillguard worker: --stage {stage!r}: all, account or cluster", err=True)
            raise typer.Exit(2)
        worker_settings = settings.worker.model_copy(update={"stage": stage})
        settings = settings.model_copy(update={"worker": worker_settings})
    w = Worker(settings, build_pipeline(settings), sink=default_sink(settings))
    w.install_signal_handlers()
    try:
        w.run(max_idle_s=max_idle)
    except WorkerError as exc:
        typer.echo(f"distillguard worker: {exc}", err=True)
        raise typer.Exit(1) from None


def produce(
    events: Annotated[
        Path, typer.Argument(help="JSON Lines file, one event per line.", exists=True)
    ],
    topic: Annotated[str | None, typer.Option(help="Topic (default: the request topic).")] = None,
) -> None:
    """Publish a JSONL file of events, keyed by account_id, with a progress bar.

    Lines are sent byte for byte: a malformed line is published too, so the worker's
    dead-letter path sees exactly what the file holds. The key is taken from the
    line's ``account_id`` where it parses.
    """
    from distillguard.stream.producer import PublishFailed
    from distillguard.stream.publish_file import publish_file

    settings = get_settings()
    try:
        sent, unkeyed = publish_file(
            events, settings.kafka_bootstrap, topic or settings.topics.requests
        )
    except PublishFailed as exc:
        typer.echo(f"distillguard produce: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"published {sent} events to {topic or settings.topics.requests}"
        + (f" ({unkeyed} without a readable account_id, sent unkeyed)" if unkeyed else "")
    )


def topics() -> None:
    """Create the request, dead-letter and alert topics on the configured cluster."""
    from distillguard.stream.admin import TopicMismatch, ensure_topics

    settings = get_settings()
    try:
        names = ensure_topics(settings.kafka_bootstrap, settings.topics, timeout_s=60)
    except TopicMismatch as exc:
        typer.echo(f"distillguard topics: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"topics on {settings.kafka_bootstrap}: {', '.join(names)}")


checkpoint_app = typer.Typer(help="The worker's checkpoint in Redis.", no_args_is_help=True)


@checkpoint_app.command("reset")
def checkpoint_reset(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Forget the consumer group's offsets and state for the request topic.

    Needed after the topic was deleted and re-created: the worker refuses to read on
    from offsets the new topic cannot have. Alerts and risks in the store are kept.
    """
    import redis

    from distillguard.stream.checkpoint import Checkpointer

    settings = get_settings()
    w = settings.worker
    what = f"group {w.group_id!r}, topic {settings.topics.requests!r}"
    if not yes:
        typer.confirm(f"Delete the checkpoint of {what}?", abort=True)
    client = redis.Redis.from_url(settings.redis_url)
    n = Checkpointer(client, w.group_id, settings.topics.requests, w.dedup_window).reset()
    typer.echo(f"deleted {n} checkpoint keys of {what}")


def register(app: typer.Typer) -> None:
    app.add_typer(checkpoint_app, name="checkpoint")
    app.command()(worker)
    app.command()(produce)
    app.command()(topics)
