"""``distillguard replay`` and ``distillguard evaluate``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


def _progress(console: Console) -> Progress:
    """A byte-based bar: replay reads the file once, so bytes are the honest unit."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def replay_cmd(
    events: Annotated[
        Path,
        typer.Argument(help="JSON Lines events file (CONTRACT §1).", exists=True, dir_okay=False),
    ],
    report: Annotated[Path, typer.Option(help="Where to write the CONTRACT §3 report.")],
) -> None:
    """Run the detectors over a file in event time (no broker, no Redis) and write a report."""
    import orjson
    from rich.console import Console

    from distillguard.detectors.pipeline import build_pipeline
    from distillguard.evaluation.replay import decoder_for, replay_file
    from distillguard.settings import get_settings

    console = Console(stderr=True)
    settings = get_settings()
    with _progress(console) as bar:
        task = bar.add_task("replay", total=events.stat().st_size)
        result = replay_file(
            events,
            build_pipeline(settings),
            decoder_for(settings),
            progress=lambda n: bar.advance(task, n),
        )
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_bytes(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2))
    alerted = len(result.alerted())
    console.print(
        f"{result.events:,} events ({result.rejected:,} rejected), "
        f"{len(result.accounts):,} accounts, {alerted:,} alerted, "
        f"{len(result.clusters):,} clusters in {result.seconds:.1f} s -> {report}"
    )
    for reason, n in result.rejected_reasons.most_common(5):
        console.print(f"  rejected {n:,}: {reason}")


def evaluate_cmd(
    events: Annotated[Path, typer.Option(help="Events file.", exists=True, dir_okay=False)],
    labels: Annotated[
        Path, typer.Option(help="Labels file (CONTRACT §2).", exists=True, dir_okay=False)
    ],
    out: Annotated[Path, typer.Option(help="Directory for metrics.json, report.md, plots.")],
    heldout: Annotated[
        bool,
        typer.Option(
            "--heldout",
            help="Report as a held-out figure: refused unless the file is a held-out run of "
            "the protocol.",
        ),
    ] = False,
    protocol: Annotated[
        Path | None,
        typer.Option(help="Protocol file (default: the shipped configs/protocol.yaml)."),
    ] = None,
) -> None:
    """Replay the detectors and the baselines over labelled events; write metrics and plots."""
    import orjson
    from rich.console import Console
    from rich.markdown import Markdown

    from distillguard.evaluation import plots
    from distillguard.evaluation.evaluate import clean, evaluate
    from distillguard.evaluation.report import render
    from distillguard.settings import get_settings

    console = Console(stderr=True)
    role, run_name, proto = _protocol_role(events, protocol, heldout)
    t0 = time.perf_counter()
    with _progress(console) as bar:
        task = bar.add_task("replay", total=events.stat().st_size)
        try:
            result = evaluate(
                events,
                labels,
                get_settings(),
                progress=lambda n: bar.advance(task, n),
                families=proto.family_of() if proto else None,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    plots.pr_curves(result, out / "pr_curves.png")
    plots.delay_cdf(result, out / "delay_cdf.png")
    result.metrics["seconds"]["total"] = round(time.perf_counter() - t0, 2)
    result.metrics["run"] = {"name": run_name, "protocol_role": role}
    m = clean(result.metrics)
    (out / "metrics.json").write_bytes(orjson.dumps(m, option=orjson.OPT_INDENT_2))
    title = f"Evaluation: {events.name}"
    if role == "heldout":
        title = f"Held-out evaluation: {run_name}"
    elif role == "tuning":
        title += f" (tuning run {run_name}: thresholds may be fitted to it)"
    md = render(m, title=title)
    (out / "report.md").write_text(md, encoding="utf-8")
    (out / "replay_report.json").write_bytes(orjson.dumps(result.report.to_json()))
    console.print(Markdown(md))
    console.print(
        f"wrote {out}/metrics.json, report.md, pr_curves.png, delay_cdf.png "
        f"in {m['seconds']['total']} s"
    )


def _protocol_role(events: Path, path: Path | None, heldout: bool) -> tuple[str, str, Any]:
    """(tuning | heldout | unlisted, run name, protocol) of an events file.

    With ``--heldout`` anything but a declared held-out run stops the command.
    """
    from distillguard.evaluation.protocol import ProtocolError, load_protocol, run_of_file

    try:
        proto = load_protocol(path)
    except (FileNotFoundError, ValueError) as exc:
        if heldout:
            raise typer.BadParameter(f"--heldout needs a protocol: {exc}") from None
        return "unlisted", "", None
    try:
        run = run_of_file(events)
    except ProtocolError as exc:
        if heldout:
            raise typer.BadParameter(str(exc)) from None
        return "unlisted", "", proto
    try:
        proto.check_heldout(run)
    except ProtocolError as exc:
        if heldout:
            raise typer.BadParameter(f"refusing a held-out figure: {exc}") from None
        tuned = any((r.scenario, r.seed) == (run.scenario, run.seed) for r in proto.tuning)
        return ("tuning" if tuned else "unlisted"), str(run), proto
    return "heldout", str(run), proto


def evaluate_heldout_cmd(
    out: Annotated[Path, typer.Option(help="Directory for metrics.json and report.md.")],
    protocol: Annotated[
        Path | None,
        typer.Option(help="Protocol file (default: the shipped configs/protocol.yaml)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Evaluate only this held-out run, SCENARIO:SEED (repeatable)."),
    ] = None,
    work: Annotated[
        Path | None, typer.Option(help="Where simulated runs go (default OUT/runs).")
    ] = None,
    scale: Annotated[
        float, typer.Option(help="Multiply account counts (not the protocol's figures).")
    ] = 1.0,
    reuse: Annotated[
        bool, typer.Option("--reuse", help="Reuse simulated runs already in --work.")
    ] = False,
) -> None:
    """Robustness matrix and leave-one-family-out folds on the protocol's held-out runs only."""
    from rich.console import Console
    from rich.markdown import Markdown

    from distillguard.evaluation.heldout import render, run_heldout, write
    from distillguard.evaluation.protocol import ProtocolError, load_protocol
    from distillguard.settings import get_settings

    console = Console(stderr=True)
    try:
        proto = load_protocol(protocol)
        m = run_heldout(
            proto,
            get_settings(),
            work or out / "runs",
            only=only,
            scale=scale,
            reuse=reuse,
            log=lambda msg: console.print(f"[dim]{msg}[/dim]"),
        )
    except (ProtocolError, ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from None
    write(m, out)
    console.print(Markdown(render(m)))
    console.print(f"wrote {out}/metrics.json, report.md in {m['seconds']} s")


def label_drill_cmd(
    events: Annotated[Path, typer.Option(help="Events file.", exists=True, dir_okay=False)],
    labels: Annotated[
        Path, typer.Option(help="Labels file (CONTRACT §2).", exists=True, dir_okay=False)
    ],
    variant: Annotated[
        list[str], typer.Option(help="Attacker archetype to drill (repeatable: one replay each).")
    ],
    confirm: Annotated[int, typer.Option(help="Accounts the analyst confirms at T.")] = 5,
    at_hours: Annotated[float, typer.Option(help="T, in hours after the first event.")] = 48.0,
    dismiss: Annotated[
        int, typer.Option(help="Benign accounts dismissed at T as well (class imbalance).")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the choice of labelled accounts.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
) -> None:
    """Confirm a few missed accounts of a variant at T; how much of the rest is alerted by
    T+1h and T+6h, and which benign accounts are newly alerted."""
    import orjson
    from rich.console import Console

    from distillguard.evaluation.label_drill import label_drill_file
    from distillguard.settings import get_settings

    console = Console(stderr=True)
    results = []
    for v in variant:
        try:
            r = label_drill_file(
                events,
                labels,
                get_settings(),
                v,
                confirm=confirm,
                at_hours=at_hours,
                dismiss=dismiss,
                seed=seed,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        doc = r.to_json()
        results.append(doc)
        by = doc["rest_share_alerted_by_hours"]
        console.print(
            f"{v}: {confirm} confirmed at T+{at_hours:g}h; rest {doc['rest']} "
            f"(alerted before T {doc['rest_alerted_before']}); alerted by "
            + ", ".join(f"T+{h}h {s:.1%}" for h, s in by.items())
            + f"; benign newly alerted {doc['benign_newly_alerted']} "
            f"({doc['benign_newly_alerted_by_archetype'] or 'none'})"
        )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


def register(app: typer.Typer) -> None:
    app.command("replay")(replay_cmd)
    app.command("evaluate")(evaluate_cmd)
    app.command("evaluate-heldout")(evaluate_heldout_cmd)
    app.command("label-drill")(label_drill_cmd)
