"""The held-out protocol (configs/protocol.yaml): which runs may tune, which are reported.

Thresholds in configs/default.yaml are set by hand, looking at evaluation runs. A figure
from a run someone looked at while choosing them measures fit, not generalisation. The
protocol names every *run* -- a scenario, a corpus split (``sim.corpus.SPLITS``) and a
seed -- as ``tuning`` (allowed to inform choices) or ``heldout`` (reported), and the
adversary *families* that leave-one-family-out folds hold out. :class:`Protocol`
refuses a held-out figure on anything that is not a declared held-out run.

A generated file names its run in every ``event_id`` (``sim.engine.run_prefix``):
``adaptive.heldout-1101-000000042`` is scenario ``adaptive``, split ``heldout``, seed
1101; ``small-7-000000042`` is ``small`` on every corpus row, seed 7.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from distillguard.settings import load_yaml, shipped_config

_RUN = re.compile(r"(?P<name>.+?)(?:\.(?P<split>tuning|heldout))?-(?P<seed>-?\d+)-\d+")


class ProtocolError(ValueError):
    """A held-out figure was asked for on a run the protocol does not allow."""


@dataclass(frozen=True, order=True)
class Run:
    """One generated run: a scenario, a corpus split and a seed."""

    scenario: str
    seed: int
    corpus_split: str = "all"

    def __str__(self) -> str:
        return f"{self.scenario}:{self.seed} ({self.corpus_split} rows)"

    @property
    def key(self) -> str:
        return f"{self.scenario}-{self.corpus_split}-{self.seed}"


def run_of_event_id(event_id: str) -> Run:
    """The run a simulated event came from.

    >>> run_of_event_id("adaptive.heldout-1101-000000042")
    Run(scenario='adaptive', seed=1101, corpus_split='heldout')
    >>> run_of_event_id("small-7-000000000")
    Run(scenario='small', seed=7, corpus_split='all')
    """
    m = _RUN.fullmatch(event_id)
    if m is None:
        raise ProtocolError(f"event id {event_id!r} does not name a simulated run")
    return Run(m["name"], int(m["seed"]), m["split"] or "all")


def run_of_file(events: Path) -> Run:
    """The run of an events file, from its first event (every event names the same run)."""
    with events.open("rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    return run_of_event_id(str(orjson.loads(line)["event_id"]))
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ProtocolError(f"{events}: first event has no event_id ({exc})") from None
    raise ProtocolError(f"{events}: no events")


@dataclass(frozen=True)
class Fold:
    """A leave-one-family-out fold: the families whose figures it reports."""

    name: str
    heldout_families: tuple[str, ...]


@dataclass(frozen=True)
class Protocol:
    tuning: tuple[Run, ...]
    heldout: tuple[Run, ...]
    families: dict[str, tuple[str, ...]]
    folds: tuple[Fold, ...]
    source: str = ""
    #: where scenario names are looked up before the shipped ones (``scenario_dir:``,
    #: relative to the protocol file): a protocol over scenarios of one's own
    scenario_dir: Path | None = None

    def scenario_path(self, name: str) -> str:
        """What to hand ``load_scenario`` for a scenario named in this protocol."""
        if self.scenario_dir is not None:
            candidate = self.scenario_dir / f"{name}.yaml"
            if candidate.is_file():
                return str(candidate)
        return name

    def family_of(self) -> dict[str, str]:
        """Variant (archetype) -> family."""
        return {v: fam for fam, variants in self.families.items() for v in variants}

    def check_heldout(self, run: Run) -> None:
        """Raise :class:`ProtocolError` unless ``run`` is a declared held-out run.

        A run whose scenario and seed appear among the tuning runs is refused whatever
        its corpus split: the traffic (accounts, timing, infrastructure) was seen.
        """
        tuned = {(r.scenario, r.seed) for r in self.tuning}
        if (run.scenario, run.seed) in tuned:
            raise ProtocolError(
                f"{run} is a tuning run in {self.source}: it may inform thresholds, so it "
                "cannot report a held-out figure"
            )
        if run not in self.heldout:
            listed = ", ".join(str(r) for r in self.heldout)
            raise ProtocolError(
                f"{run} is not a held-out run of {self.source} (held out: {listed})"
            )

    def tuning_view(self, fold: Fold) -> list[dict[str, Any]]:
        """The tuning runs of ``fold``: every tuning run without the held-out families.

        What a threshold search for this fold may look at, as ``simulate`` arguments.
        """
        drop = sorted(v for f in fold.heldout_families for v in self.families.get(f, ()))
        return [
            {
                "scenario": r.scenario,
                "seed": r.seed,
                "corpus_split": r.corpus_split,
                "drop_archetypes": drop,
            }
            for r in self.tuning
        ]


def default_protocol_path() -> Path:
    return Path(str(shipped_config("protocol.yaml")))


def load_protocol(path: Path | None = None) -> Protocol:
    """Read and check a protocol file (default: the shipped configs/protocol.yaml)."""
    path = path or default_protocol_path()
    raw = load_yaml(path)
    try:
        proto = _build(raw, str(path))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: {exc!r}") from None
    if raw.get("scenario_dir"):
        proto = dataclasses.replace(proto, scenario_dir=(path.parent / raw["scenario_dir"]))
    return proto


def _runs(items: list[dict[str, Any]]) -> tuple[Run, ...]:
    out = []
    for item in items:
        split = str(item.get("corpus_split", "all"))
        for seed in item["seeds"]:
            out.append(Run(str(item["scenario"]), int(seed), split))
    return tuple(out)


def _build(raw: dict[str, Any], source: str) -> Protocol:
    tuning, heldout = _runs(raw["runs"]["tuning"]), _runs(raw["runs"]["heldout"])
    both = {(r.scenario, r.seed) for r in tuning} & {(r.scenario, r.seed) for r in heldout}
    if both:
        raise ValueError(f"{source}: runs both tuning and held out: {sorted(both)}")
    if any(r.corpus_split != "heldout" for r in heldout):
        raise ValueError(f"{source}: every held-out run must use corpus_split: heldout")
    if any(r.corpus_split == "heldout" for r in tuning):
        raise ValueError(f"{source}: a tuning run cannot use the held-out corpus rows")
    families = {str(f): tuple(str(v) for v in vs) for f, vs in raw["families"].items()}
    seen: dict[str, str] = {}
    for fam, variants in families.items():
        for v in variants:
            if v in seen:
                raise ValueError(f"{source}: {v} is in families {seen[v]} and {fam}")
            seen[v] = fam
    folds = tuple(
        Fold(str(f["name"]), tuple(str(x) for x in f["heldout_families"])) for f in raw["folds"]
    )
    for fold in folds:
        unknown = set(fold.heldout_families) - set(families)
        if unknown:
            raise ValueError(f"{source}: fold {fold.name} holds out unknown {sorted(unknown)}")
    return Protocol(tuning, heldout, families, folds, source)
