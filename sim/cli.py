"""``distillguard simulate``: labelled synthetic traffic to files or live to Kafka."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def simulate(
    scenario: Annotated[
        str, typer.Option(help="Scenario name in configs/scenarios/ or a YAML path.")
    ] = "small",
    out: Annotated[Path | None, typer.Option(help="Events file (JSON Lines, CONTRACT §1).")] = None,
    labels: Annotated[Path | None, typer.Option(help="Ground-truth labels (CONTRACT §2).")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    scale: Annotated[float, typer.Option(help="Multiply account counts.")] = 1.0,
    to_kafka: Annotated[
        bool, typer.Option("--to-kafka", help="Publish live to the requests topic.")
    ] = False,
    rate: Annotated[float, typer.Option(help="Events per second with --to-kafka.")] = 2000.0,
    data_dir: Annotated[
        Path | None, typer.Option(help="Prompt corpora (default ../shared/data).")
    ] = None,
    corpus_split: Annotated[
        str | None,
        typer.Option(help="Corpus rows: all, tuning or heldout (configs/protocol.yaml)."),
    ] = None,
    drop_archetype: Annotated[
        list[str] | None,
        typer.Option(help="Leave out this archetype's groups (repeatable; a fold's tuning view)."),
    ] = None,
) -> None:
    """Generate a scenario's traffic: seeded, reproducible, every account labelled."""
    import dataclasses

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from distillguard.sim.engine import generate, publish, write_files
    from distillguard.sim.scenario import load_scenario

    console = Console(stderr=True)
    if out is None and not to_kafka:
        raise typer.BadParameter("give --out EVENTS.jsonl, --to-kafka, or both")
    try:
        spec = load_scenario(scenario, seed=seed, scale=scale, corpus_split=corpus_split)
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    if drop_archetype:
        spec = spec.without(set(drop_archetype))
    if data_dir is not None:
        spec = dataclasses.replace(spec, data_dir=data_dir)
    with console.status(f"generating scenario {spec.name!r} (seed {spec.seed})"):
        try:
            traffic = generate(spec)
        except FileNotFoundError as exc:
            raise typer.BadParameter(str(exc)) from None
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        if out is not None or labels is not None:
            task = bar.add_task("writing", total=traffic.events if out else 0)
            write_files(traffic, out, labels, lambda n: bar.advance(task, n))
        if to_kafka:
            from distillguard.settings import get_settings
            from distillguard.stream.producer import EventPublisher

            settings = get_settings()
            task = bar.add_task(f"publishing at {rate:g}/s", total=traffic.events)
            with EventPublisher(settings.kafka_bootstrap, settings.topics.requests) as pub:
                publish(traffic, pub.send, rate, lambda n: bar.advance(task, n))
    table = Table("archetype", "accounts", "events", title=f"scenario {spec.name}")
    by_arch = traffic.counts_by_archetype()
    accounts: dict[str, int] = {}
    for a in traffic.accounts:
        accounts[a.archetype] = accounts.get(a.archetype, 0) + 1
    for arch, n in by_arch.items():
        table.add_row(arch, str(accounts[arch]), f"{n:,}")
    table.add_row("total", str(len(traffic.accounts)), f"{traffic.events:,}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
