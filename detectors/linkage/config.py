"""Parameters of the linkage stage, with defaults, and the loader for ``configs/linkage.yaml``.

The parameters live in their own file rather than in ``configs/default.yaml`` so that
the account detectors' settings and these can change independently; an override file
can still be named per process (``load_config(path)``). msgspec validates the YAML
strictly, so a typo in a key is an error with the key's path, not a silent default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec
import yaml

from distillguard.settings import PROJECT_ROOT

DEFAULT_PATH = PROJECT_ROOT / "configs" / "linkage.yaml"
#: Environment variable naming another YAML file, so a whole run (``evaluate``,
#: ``replay``) can try other parameters without editing the shipped file.
ENV_PATH = "DISTILLGUARD_LINKAGE_CONFIG"


class KindParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How much one kind of shared evidence counts, and for how long.

    ``weight`` is the contribution of one shared value held by very few accounts;
    ``cap`` bounds the kind's total in one link (sharing five proxy /24s is more than
    sharing one, but not unboundedly); ``max_share`` drops values held by more than
    that share of active accounts (a cloud ASN, a popular SDK user agent).
    """

    weight: float
    cap: float
    half_life_s: float
    max_share: float
    group: str = ""


#: Key prefix (one character, used on the hot path) -> kind name (used in reports).
KIND_OF_PREFIX: dict[str, str] = {
    "p": "payment",
    "n": "net",
    "a": "asn",
    "u": "user_agent",
    "s": "system_prompt",
    "t": "template",
    "c": "template_centroid",
    "y": "sync",
    "b": "behaviour",
    "k": "cohort",
}

DEFAULT_KINDS: dict[str, KindParams] = {
    "payment": KindParams(
        weight=1.4, cap=1.4, half_life_s=259_200, max_share=0.5, group="identity"
    ),
    "net": KindParams(weight=0.5, cap=0.8, half_life_s=43_200, max_share=0.1, group="network"),
    "asn": KindParams(weight=0.15, cap=0.15, half_life_s=43_200, max_share=0.02, group="network"),
    "user_agent": KindParams(
        weight=0.15, cap=0.15, half_life_s=86_400, max_share=0.03, group="product"
    ),
    "system_prompt": KindParams(
        weight=0.1, cap=0.1, half_life_s=86_400, max_share=0.03, group="product"
    ),
    "template": KindParams(weight=0.8, cap=0.8, half_life_s=43_200, max_share=0.1, group="product"),
    "template_centroid": KindParams(
        weight=0.8, cap=0.8, half_life_s=43_200, max_share=0.1, group="product"
    ),
    "sync": KindParams(weight=0.8, cap=0.8, half_life_s=21_600, max_share=0.2, group="timing"),
    "behaviour": KindParams(
        weight=0.3, cap=0.3, half_life_s=21_600, max_share=0.05, group="behaviour"
    ),
    # A cohort key stands for a group-level test that already weighed chance (see
    # ``cohort.py``), so rarity does not scale it; it counts like a shared card.
    "cohort": KindParams(weight=1.4, cap=1.4, half_life_s=21_600, max_share=0.5, group="cohort"),
}

#: Bound on each group of kinds in one link. Kinds in one group are not independent:
#: honest users of one product share its template, system prompt and user agent;
#: honest colleagues share their NAT's /24s and ASN. A group alone stays below the
#: link threshold, so a link needs two independent groups (or a shared card).
DEFAULT_GROUP_CAPS: dict[str, float] = {
    "identity": 1.4,
    "network": 0.7,
    "product": 0.8,
    "timing": 0.8,
    "behaviour": 0.3,
    "cohort": 1.4,
}


class LinkageConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Every knob of the linkage stage; see ``docs/linkage.md`` for how they interact."""

    kinds: dict[str, KindParams] = msgspec.field(default_factory=lambda: dict(DEFAULT_KINDS))
    #: Accumulated link weight at which two accounts belong to one cluster.
    link_threshold: float = 1.0
    group_caps: dict[str, float] = msgspec.field(default_factory=lambda: dict(DEFAULT_GROUP_CAPS))
    #: Candidate links below this are not kept at all (memory).
    store_threshold: float = 0.6
    #: Event-time cadence of link scoring and cluster updates.
    eval_interval_s: float = 60.0
    #: Event-time cadence of the full re-validation (expiry, rescoring, splits).
    revalidate_interval_s: float = 3600.0
    #: A membership expires after this many half-lives of its kind without a sighting.
    expire_half_lives: float = 4.0
    #: Accounts silent this long are forgotten.
    account_ttl_s: float = 3 * 86_400.0
    #: Values held by fewer accounts than this are never dropped as common.
    min_common: int = 40
    #: Hard bound on accounts tracked per value, whatever the population.
    max_members: int = 5_000
    #: Rarity is computed against at least this many accounts, so a small population
    #: (a test, a quiet hour) does not make every shared value look common.
    rarity_population_floor: int = 1_000
    #: A value held by at most this many accounts counts as fully rare: a card shared
    #: by twelve accounts is no less damning than one shared by two.
    rarity_free_holders: int = 8
    #: Existing holders of a value a newcomer is compared with (half earliest, half latest).
    anchors: int = 8
    #: Evidence values remembered per account (oldest evicted first).
    max_keys_per_account: int = 96
    #: Silence before a request that makes it the onset of a burst.
    onset_gap_s: float = 600.0
    #: Width of the time bucket in which onsets count as synchronised.
    sync_bucket_s: float = 300.0
    #: Distinct /24 (/64) networks two accounts must share before network counts.
    net_min_shared: int = 2
    #: Onsets two accounts must share before their schedules count as synchronised.
    sync_min_shared: int = 2
    #: Chance co-onsets are multiplied by this (people start work at similar hours).
    sync_diurnal: float = 10.0
    #: -log10 of the chance probability at which synchronisation counts fully.
    sync_full_surprise: float = 4.0
    #: Onsets remembered per account.
    sync_max_onsets: int = 32
    #: Tokens at each end of a prompt that make up its template skeleton.
    template_edge_tokens: int = 8
    #: Sightings of one template band an account needs before it counts as its template.
    template_min_hits: int = 2
    #: Every prompt of an account's first ``sample_first`` requests is fingerprinted,
    #: then one request in ``sample_every``.
    sample_first: int = 8
    sample_every: int = 16
    #: Redacted prompts: an account's fingerprint centroid is used once it has this many
    #: fingerprints (and refreshed every ``centroid_every``).
    centroid_min: int = 3
    centroid_every: int = 2
    #: Bits (of 64) on which two centroids agree: from ``centroid_agree_from`` (chance
    #: is 32) the template_centroid weight grows linearly to full at ``centroid_agree_full``.
    centroid_agree_from: int = 44
    centroid_agree_full: int = 56
    #: Cohorts (``cohort.py``): accounts whose first request falls within this many
    #: seconds of each other's are examined together as possible co-starters.
    cohort_window_s: float = 1800.0
    #: Smallest group of co-starting accounts, tied by rare networks, that is a cohort.
    cohort_min_size: int = 6
    #: Distinct rare ASNs, each used by at least two of its members, a cohort must span
    #: (a proxy pool exits through several networks; a NAT, an office, a campus through one).
    cohort_min_networks: int = 2
    #: A network value ties a cohort only while held by at most this share of the
    #: accounts seen so far (no population floor: see ``_find_cohorts``).
    cohort_max_share: float = 0.05
    #: Template band keys remembered per account before it is known to repeat them.
    max_template_candidates: int = 64
    #: Minimum seconds between two behaviour-vector observations of one account.
    behaviour_interval_s: float = 600.0
    #: Smallest cluster that raises an alert.
    min_alert_size: int = 4
    #: Cluster risk at and above which a cluster alert is raised.
    alert_risk: float = 0.7
    #: An alerted cluster's alert is updated when members join or its level rises, at
    #: most once per this many seconds of event time.
    realert_interval_s: float = 300.0
    #: Members listed per evidence item in an alert.
    evidence_accounts: int = 50
    #: Evidence items per alert.
    evidence_items: int = 12

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KIND_OF_PREFIX.values())
        if unknown:
            raise ValueError(f"unknown evidence kinds {sorted(unknown)}")
        if self.link_threshold <= 0 or self.store_threshold < 0:
            raise ValueError("link_threshold must be > 0 and store_threshold >= 0")
        if self.eval_interval_s <= 0 or self.revalidate_interval_s < self.eval_interval_s:
            raise ValueError("need 0 < eval_interval_s <= revalidate_interval_s")

    def kind(self, name: str) -> KindParams:
        return self.kinds.get(name) or DEFAULT_KINDS[name]


def load_config(path: Path | None = None, **overrides: Any) -> LinkageConfig:
    """Defaults, then the YAML file, then overrides.

    The file is ``path``, else the one named by ``$DISTILLGUARD_LINKAGE_CONFIG``, else
    ``configs/linkage.yaml``.

    Kinds given in the file replace the defaults kind by kind; missing kinds keep theirs.

    >>> load_config(Path("/nonexistent.yaml"))
    Traceback (most recent call last):
    ...
    FileNotFoundError: linkage config not found: /nonexistent.yaml
    >>> load_config(link_threshold=2.0).link_threshold
    2.0
    """
    env = os.environ.get(ENV_PATH)
    if path is None and env:
        path = Path(env)
    file = path or DEFAULT_PATH
    data: dict[str, Any] = {}
    if file.exists():
        loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{file}: top level must be a mapping")
        data = loaded
    elif path is not None:
        raise FileNotFoundError(f"linkage config not found: {path}")
    data.update(overrides)
    kinds = {name: msgspec.structs.asdict(p) for name, p in DEFAULT_KINDS.items()}
    for name, params in (data.get("kinds") or {}).items():
        kinds[name] = {**kinds.get(name, {}), **params}
    data["kinds"] = kinds
    data["group_caps"] = {**DEFAULT_GROUP_CAPS, **(data.get("group_caps") or {})}
    try:
        # strict=False: values from environment variables arrive as strings
        return msgspec.convert(data, LinkageConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{file}: {exc}") from None
