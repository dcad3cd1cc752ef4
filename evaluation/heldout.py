"""``evaluate-heldout``: the robustness matrix on held-out runs only, and its folds.

Orchestration: every held-out run of the protocol (configs/protocol.yaml) is simulated
on the held-out corpus rows, replayed through the shipped pipeline and the baselines
(:func:`evaluation.evaluate.evaluate`), and the per-account outcomes of all runs are
pooled into one robustness matrix. Each leave-one-family-out fold then reports its
held-out families' recall, with the tuning view it allows (the tuning runs without
those families) written next to it. A run that is not a declared held-out run is
refused before anything is simulated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from distillguard.evaluation import robustness
from distillguard.evaluation.evaluate import (
    clean,
    detector_setting,
    evaluate,
    honest_group_names,
    robustness_of,
)
from distillguard.evaluation.protocol import Protocol, ProtocolError, Run, run_of_file
from distillguard.evaluation.report import _f, robustness_section
from distillguard.settings import Settings


def select(protocol: Protocol, only: list[str] | None) -> list[Run]:
    """The held-out runs to evaluate: all, or those named ``scenario:seed`` in ``only``.

    Naming a tuning run (or any run the protocol does not hold out) is refused.
    """
    if not only:
        return list(protocol.heldout)
    out = []
    for spec in only:
        name, _, seed = spec.rpartition(":")
        if not name or not seed.lstrip("-").isdigit():
            raise ProtocolError(f"{spec!r}: give runs as SCENARIO:SEED")
        run = Run(name, int(seed), "heldout")
        protocol.check_heldout(run)
        out.append(run)
    return out


def simulate_run(
    run: Run, work: Path, scale: float, reuse: bool, scenario: str | None = None
) -> tuple[Path, Path]:
    """Events and labels of ``run`` in ``work`` (generated unless ``reuse`` finds them).

    ``scenario`` is what to load (a name or a path; default ``run.scenario``).
    """
    from distillguard.sim.engine import generate, write_files
    from distillguard.sim.scenario import load_scenario

    stem = work / f"{run.key}{'' if scale == 1.0 else f'-x{scale:g}'}"
    events, labels = stem.with_suffix(".jsonl"), Path(f"{stem}_labels.jsonl")
    if not (reuse and events.exists() and labels.exists()):
        spec = load_scenario(
            scenario or run.scenario, seed=run.seed, scale=scale, corpus_split=run.corpus_split
        )
        write_files(generate(spec), events, labels)
    return events, labels


def run_heldout(
    protocol: Protocol,
    settings: Settings,
    work: Path,
    *,
    only: list[str] | None = None,
    scale: float = 1.0,
    reuse: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Evaluate the held-out runs; returns ``metrics.json``'s content."""
    runs = select(protocol, only)
    families = protocol.family_of()
    honest = honest_group_names()
    work.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, dict[str, dict[str, robustness.Outcome]]] = {}
    per_run: list[dict[str, Any]] = []
    names: list[str] = []
    t0 = time.perf_counter()
    for run in runs:
        log(f"{run}: simulating")
        t_run = time.perf_counter()
        events, labels = simulate_run(run, work, scale, reuse, protocol.scenario_path(run.scenario))
        actual = run_of_file(events)
        if actual != run:  # a stale or foreign file under the run's name
            raise ProtocolError(f"{events} holds {actual}, not {run}")
        protocol.check_heldout(actual)
        t_sim = time.perf_counter() - t_run
        log(f"{run}: evaluating {events.name}")
        result = evaluate(events, labels, settings, families=families)
        names = [m.name for m in result.methods]
        for method in result.methods:
            outcomes.setdefault(method.name, {})[run.key] = robustness_of(
                method, result.truth, result.first_event_ts
            )
        pipeline = result.metrics["methods"][0]
        per_run.append(
            {
                "run": {
                    "scenario": run.scenario,
                    "seed": run.seed,
                    "corpus_split": run.corpus_split,
                },
                "events": result.metrics["events"],
                "accounts": result.metrics["accounts"],
                "seconds": {
                    "simulate": round(t_sim, 1),
                    **result.metrics["seconds"],
                    "total": round(time.perf_counter() - t_run, 1),
                },
                "pr_auc": pipeline["pr_auc"],
                "alerted": pipeline["alerted"],
                "methods": [
                    {"name": x["name"], "robustness": x["robustness"]}
                    for x in result.metrics["methods"]
                ],
            }
        )
    matrices = {
        name: robustness.matrix(robustness.pool(outcomes[name]), families, honest) for name in names
    }
    pooled = [{"name": name, "robustness": matrices[name]} for name in names]
    fam = robustness.by_family(matrices[names[0]]) if names else {}
    folds = []
    for fold in protocol.folds:
        rows = [fam[f] for f in fold.heldout_families if f in fam]
        accounts = sum(r["accounts"] for r in rows)
        alerted = sum(r["alerted"] for r in rows)
        folds.append(
            {
                "name": fold.name,
                "heldout_families": list(fold.heldout_families),
                "variants": sorted(v for r in rows for v in r["variants"]),
                "accounts": accounts,
                "alerted": alerted,
                "recall": alerted / accounts if accounts else None,
                "tuning_view": protocol.tuning_view(fold),
            }
        )
    return clean(
        {
            "protocol": protocol.source,
            "pipeline": str(detector_setting(settings, "pipeline", "counting")),
            "alert_threshold": float(detector_setting(settings, "alert_threshold", 0.7)),
            "scale": scale,
            "runs": per_run,
            "pooled": {"methods": pooled, "families": fam},
            "folds": folds,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    )


def render(m: dict[str, Any]) -> str:
    """``report.md``: pooled matrix, folds, then each run's matrix."""
    runs = ", ".join(
        f"`{r['run']['scenario']}:{r['run']['seed']}` ({r['events']:,} events, "
        f"{r['accounts']:,} accounts)"
        for r in m["runs"]
    )
    scale = "" if m["scale"] == 1.0 else f" **Scaled ×{m['scale']:g}: not the protocol's figures.**"
    lines = [
        "# Held-out evaluation",
        "",
        f"Held-out runs of `{Path(m['protocol']).name}` only, on held-out corpus rows: {runs}. "
        f"Pipeline `{m['pipeline']}`, alert threshold {m['alert_threshold']}.{scale}",
    ]
    methods = m["pooled"]["methods"]
    lines += robustness_section(methods)
    lines += [
        "",
        "## Leave-one-family-out folds",
        "",
        "Each fold reports the held-out runs' recall on the families it holds out; its tuning "
        "view (in `metrics.json`) is every tuning run without those families' campaigns.",
        "",
        "| fold | held-out families | variants | accounts | alerted | recall |",
        "|---|---|---|---|---|---|",
    ]
    for f in m["folds"]:
        families, variants = ", ".join(f["heldout_families"]), ", ".join(f["variants"]) or "—"
        lines.append(
            f"| {f['name']} | {families} | {variants} | {f['accounts']:,} | {f['alerted']:,} "
            f"| {_f(f['recall'])} |"
        )
    if methods:
        fpr = methods[0]["robustness"]["benign_fpr"]
        lines += ["", f"Share of benign accounts alerted over all held-out runs: {_f(fpr, 4)}."]
    lines += ["", "## Per run"]
    for r in m["runs"]:
        lines += ["", f"### {r['run']['scenario']}:{r['run']['seed']}"]
        lines += robustness_section(r["methods"], level="####")
    return "\n".join(lines) + "\n"


def write(m: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_bytes(orjson.dumps(m, option=orjson.OPT_INDENT_2))
    (out / "report.md").write_text(render(m), encoding="utf-8")
