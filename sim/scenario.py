"""Scenario files (``configs/scenarios/*.yaml``): who is in the traffic, for how long.

Named scenarios (``small``, ``default``) ship as package data of ``distillguard.configs``
and are found wherever distillguard is installed; any other scenario is a path.

A scenario names the simulated period, the models on offer (one may be released
mid-scenario), how many accounts of each benign archetype, and the attacking
campaigns. Archetype parameters default to the values in ``sim/benign.py`` and
``sim/attackers.py``; a scenario overrides any of them by name, and a misspelt name
is an error rather than a silently ignored key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from distillguard.settings import CONFIG_PACKAGE, load_yaml

SCENARIO_FOLDER = "scenarios"


@dataclass(frozen=True)
class Model:
    name: str
    role: str = "flagship"  # flagship | mini | release
    released_at_hour: float | None = None


@dataclass(frozen=True)
class Campaign:
    id: str
    archetype: str
    accounts: int
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    start: float
    days: float
    models: tuple[Model, ...]
    benign: dict[str, dict[str, Any]]
    campaigns: tuple[Campaign, ...]
    data_dir: Path | None = None
    #: Which corpus rows the text comes from (``sim.corpus.SPLITS``): ``tuning`` and
    #: ``heldout`` runs never share a prompt (configs/protocol.yaml).
    corpus_split: str = "all"

    @property
    def end(self) -> float:
        return self.start + self.days * 86_400.0

    def model_index(self, role: str) -> int:
        for i, m in enumerate(self.models):
            if m.role == role:
                return i
        raise ValueError(f"scenario {self.name!r} has no model with role {role!r}")

    def without(self, archetypes: set[str] | frozenset[str]) -> Scenario:
        """This scenario minus the groups of ``archetypes`` (a protocol fold's tuning view)."""
        import dataclasses

        return dataclasses.replace(
            self,
            benign={a: p for a, p in self.benign.items() if a not in archetypes},
            campaigns=tuple(c for c in self.campaigns if c.archetype not in archetypes),
        )

    def release(self) -> tuple[int, float] | None:
        """(model index, epoch seconds) of the model released mid-scenario, if any."""
        for i, m in enumerate(self.models):
            if m.role == "release" and m.released_at_hour is not None:
                return i, self.start + m.released_at_hour * 3600.0
        return None


def shipped_scenarios() -> dict[str, Traversable]:
    """Name -> file of every scenario shipped with distillguard."""
    folder = files(CONFIG_PACKAGE).joinpath(SCENARIO_FOLDER)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{CONFIG_PACKAGE}/{SCENARIO_FOLDER} is missing: this installation of"
            " distillguard is incomplete (reinstall it)"
        )
    return {
        f.name.removesuffix(".yaml"): f
        for f in folder.iterdir()
        if f.is_file() and f.name.endswith(".yaml")
    }


def resolve(name_or_path: str) -> Path | Traversable:
    """A scenario name (``small``) or a path to a YAML file.

    >>> resolve("small").name
    'small.yaml'
    >>> resolve("no-such-scenario")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: no scenario 'no-such-scenario' (known: adaptive, ..., small, swarm)
    """
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"scenario file not found: {path}")
        return path
    shipped = shipped_scenarios()
    if name_or_path not in shipped:
        known = ", ".join(sorted(shipped))
        raise FileNotFoundError(f"no scenario {name_or_path!r} (known: {known})")
    return shipped[name_or_path]


def load_scenario(
    name_or_path: str,
    *,
    seed: int | None = None,
    scale: float = 1.0,
    corpus_split: str | None = None,
) -> Scenario:
    """Read and check a scenario; ``scale`` multiplies account counts (at least 1 per group).

    ``corpus_split`` overrides the scenario's ``corpus_split`` (default ``all``).
    """
    path = resolve(name_or_path)
    raw = load_yaml(path)
    if corpus_split is not None:
        raw = {**raw, "corpus_split": corpus_split}
    try:
        return _build(raw, path, seed=seed, scale=scale)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def _scaled(n: int, scale: float) -> int:
    return max(1, round(int(n) * scale))


def _build(
    raw: dict[str, Any], path: Path | Traversable, *, seed: int | None, scale: float
) -> Scenario:
    from distillguard.sim.corpus import SPLITS
    from distillguard.sim.registry import attacker_archetypes, benign_archetypes

    BENIGN, ATTACKERS = benign_archetypes(), attacker_archetypes()

    if scale <= 0:
        raise ValueError("scale must be positive")
    start = datetime.fromisoformat(str(raw["start"]).replace("Z", "+00:00"))
    if start.tzinfo is None:
        raise ValueError("start needs a UTC offset, e.g. 2026-11-16T00:00:00Z")
    days = float(raw["days"])
    if days <= 0:
        raise ValueError("days must be positive")
    models = tuple(Model(**m) for m in raw["models"])
    benign: dict[str, dict[str, Any]] = {}
    for arch, params in (raw.get("benign") or {}).items():
        if arch not in BENIGN:
            raise ValueError(f"unknown benign archetype {arch!r} (known: {sorted(BENIGN)})")
        params = dict(params or {})
        _check_params(arch, params, BENIGN[arch].defaults)
        params["accounts"] = _scaled(params.get("accounts", 1), scale)
        benign[arch] = params
    campaigns = []
    for item in raw.get("campaigns") or []:
        item = dict(item)
        cid, arch = str(item.pop("id")), str(item.pop("archetype"))
        if arch not in ATTACKERS:
            raise ValueError(f"unknown attacker archetype {arch!r} (known: {sorted(ATTACKERS)})")
        accounts = int(item.pop("accounts", 1))
        _check_params(arch, item, ATTACKERS[arch].defaults)
        # Single-account archetypes stay single; campaigns scale.
        n = accounts if accounts == 1 else max(2, _scaled(accounts, scale))
        campaigns.append(Campaign(id=cid, archetype=arch, accounts=n, params=item))
    ids = [c.id for c in campaigns]
    if len(set(ids)) != len(ids):
        raise ValueError("campaign ids must be unique")
    data_dir = raw.get("data_dir")
    split = str(raw.get("corpus_split", "all"))
    if split not in SPLITS:
        raise ValueError(f"corpus_split must be one of {', '.join(SPLITS)}, not {split!r}")
    base = path.parent if isinstance(path, Path) else None
    if data_dir and base is None:
        raise ValueError("data_dir is relative to a scenario file on disk: give a path")
    return Scenario(
        name=str(raw.get("name", path.name.rsplit(".", 1)[0])),
        seed=int(seed if seed is not None else raw.get("seed", 0)),
        start=start.timestamp(),
        days=days,
        models=models,
        benign=benign,
        campaigns=tuple(campaigns),
        data_dir=(base / data_dir).resolve() if data_dir and base else None,
        corpus_split=split,
    )


def _check_params(arch: str, params: dict[str, Any], defaults: dict[str, Any]) -> None:
    unknown = set(params) - set(defaults) - {"accounts"}
    if unknown:
        raise ValueError(
            f"{arch}: unknown parameters {sorted(unknown)} (known: {sorted(defaults)})"
        )
