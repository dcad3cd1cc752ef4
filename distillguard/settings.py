"""The one settings object, for every process and every stage, linkage included.

Precedence, lowest first: field defaults, the shipped ``configs/default.yaml``, the file
named by ``--config`` / ``DISTILLGUARD_CONFIG``, then ``DISTILLGUARD_*`` environment
variables (nested keys with ``__``, e.g. ``DISTILLGUARD_WORKER__BATCH_MAX_RECORDS`` or
``DISTILLGUARD_DETECTORS__LINKAGE__LINK_THRESHOLD``). Settings are read once per process
and frozen, so every module sees the same values.

The shipped configs are package data (``distillguard.configs``, the checkout's
``configs/`` folder), found with :mod:`importlib.resources` wherever distillguard is
installed; a missing default file is an error, never a silent fall-back to field
defaults. Only this module reads config files: detectors are handed their section.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

#: The checkout (or, installed, site-packages): only for run-time state of the
#: developer commands (``.distillguard/``), never for configs.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_PACKAGE = "distillguard.configs"
CONFIG_ENV = "DISTILLGUARD_CONFIG"


def shipped_config(*parts: str) -> Traversable:
    """A file shipped in ``distillguard.configs``; FileNotFoundError if it is not there.

    An installation without its configs would otherwise run with no detector rules
    and look healthy, so a missing file stops the process with what to do about it.
    """
    try:
        resource = files(CONFIG_PACKAGE).joinpath(*parts)
    except ModuleNotFoundError:
        resource = None
    if resource is None or not resource.is_file():
        name = "/".join(parts)
        raise FileNotFoundError(
            f"shipped config {CONFIG_PACKAGE}/{name} not found: this installation of"
            " distillguard is incomplete (reinstall it; a checkout needs `pip install -e .`"
            " again after configs/ became package data)"
        )
    return resource


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Topics(_Section):
    requests: str = "api-requests"
    dead_letter: str = "api-requests.dlq"
    alerts: str = "abuse-alerts"
    #: the account stage's hand-off to the cluster stage (``worker.stage``); "" names it
    #: after the request topic (``<requests>.linkage``), with as many partitions
    linkage: str = ""
    partitions: int = Field(6, ge=1)
    #: checked (and used at creation) for all three topics; ``distillguard worker``
    #: refuses to start on a mismatch (``stream.admin.check_topics``)
    replication_factor: int = Field(1, ge=1)
    min_insync_replicas: int = Field(1, ge=1)
    #: largest record a distillguard producer sends (kafka-python ``max_request_size``);
    #: keep it at or below the brokers' ``message.max.bytes``
    max_message_bytes: int = Field(1_048_576, ge=1024)

    @property
    def linkage_topic(self) -> str:
        """The hand-off topic's name (``linkage``, or ``<requests>.linkage``)."""
        return self.linkage or f"{self.requests}.linkage"


class Worker(_Section):
    group_id: str = "distillguard-worker"
    client_id: str = "distillguard"
    batch_max_records: int = Field(5000, ge=1)
    poll_timeout_ms: int = Field(200, ge=1)
    session_timeout_ms: int = Field(6000, ge=1000)
    heartbeat_interval_ms: int = Field(1000, ge=100)
    dedup_window: int = Field(200_000, ge=0)
    stats_interval_s: float = Field(5.0, gt=0)
    #: One checkpoint (every piece of state, the store's writes, offsets) this often and
    #: on stop; what a crash loses since the last one is re-read from Kafka.
    checkpoint_interval_s: float = Field(2.0, gt=0)
    #: ...or after this many processed events, whichever comes first
    checkpoint_max_events: int = Field(50_000, ge=1)
    #: What this process runs: ``all`` (one process: account detectors and linkage),
    #: ``account`` (N processes keyed by account, forwarding linkage evidence to
    #: ``topics.linkage``) or ``cluster`` (one process: linkage, clusters, cluster
    #: alerts, reading ``topics.linkage``). docs/scale-out.md.
    stage: Literal["all", "account", "cluster"] = "all"
    #: Names this worker's shared state and cluster ids when several workers share one
    #: group ("" for a single worker): ids of two workers can never collide in the store.
    instance: str = Field("", pattern=r"^[a-z0-9-]{0,32}$")
    #: Records fetched but not yet merged, over all partitions: beyond this the partitions
    #: furthest ahead in event time are paused until the others catch up.
    merge_buffer_max: int = Field(200_000, ge=1000)
    #: A worker that cannot reach Redis or Kafka for this long exits non-zero (its
    #: supervisor restarts it from the last checkpoint) instead of hanging.
    outage_exit_s: float = Field(300.0, gt=0)


class Validation(_Section):
    max_prompt_chars: int = Field(200_000, ge=1)
    max_message_bytes: int = Field(1_048_576, ge=1024)
    max_tokens: int = Field(10_000_000, ge=1)
    max_clock_skew_days: float = Field(3650, gt=0)
    #: events stamped further than this ahead of the worker's wall clock are refused
    max_future_s: float = Field(3600.0, gt=0)
    #: Events stamped further than this ahead of / behind the stream's event-time
    #: watermark go to the dead-letter topic (a watermark is a robust median of recent
    #: event times, so a legitimate lull does not make the next event "ahead").
    max_ahead_s: float = Field(7 * 86_400.0, gt=0)
    max_behind_s: float = Field(7 * 86_400.0, gt=0)


class RateLimit(_Section):
    """Token bucket per API key (per client address for ``unauthenticated``):
    ``rate_per_s`` sustained, ``burst`` at once."""

    rate_per_s: float = Field(gt=0)
    burst: int = Field(ge=1)


class StoreSettings(_Section):
    risk_ttl_s: int = Field(7 * 86400, ge=1)
    feature_history_len: int = Field(200, ge=1)
    sample_prompts_len: int = Field(20, ge=1)


class Api(_Section):
    """The HTTP service (``distillguard serve``) and the Redis store it reads."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    redis_timeout_s: float = Field(0.25, gt=0)
    key_cache_s: float = Field(2.0, ge=0)
    batch_max_ids: int = Field(1000, ge=1)
    page_max: int = Field(500, ge=1)
    #: larger request bodies answer 413 before they are read (JSON parsing is unbounded work)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=lambda: {
            "service": RateLimit(rate_per_s=5000, burst=10000),
            "analyst": RateLimit(rate_per_s=50, burst=200),
            "admin": RateLimit(rate_per_s=50, burst=200),
            # requests without a valid key, per client address: throttles key guessing
            "unauthenticated": RateLimit(rate_per_s=1, burst=30),
        }
    )
    store: StoreSettings = StoreSettings()


class DetectorRule(_Section):
    """One expert rule: a signal's ramp from ``low`` (no suspicion) to ``high`` (full)."""

    signal: str
    low: float
    high: float
    weight: float
    group: str


class DetectorAnomaly(_Section):
    n_trees: int = Field(10, ge=1)
    height: int = Field(8, ge=1, le=16)
    window_size: int = Field(250, ge=10)
    seed: int = 42
    #: log-odds added at the top of the anomaly-score distribution
    weight: float = Field(1.0, ge=0)
    #: anomaly-score percentile from which it starts to count
    from_percentile: float = Field(95.0, ge=0, le=100)


class DetectorFeedback(_Section):
    """The label-trained model (``scorers/feedback.py``) and the rescoring it triggers."""

    bandwidth: float = Field(0.05, gt=0)
    strength: float = Field(3.0, ge=0)
    max_adjustment: float = Field(4.0, ge=0)
    capacity: int = Field(512, ge=1)
    min_per_class: int = Field(10, ge=1)
    #: Recent population vectors a confirmed label's neighbourhood is judged against.
    population_capacity: int = Field(512, ge=0)
    #: Log-odds a confirmed neighbourhood adds at most (over ``max_adjustment``'s bound:
    #: a missed campaign's members score far below the alert threshold).
    confirmed_max: float = Field(7.0, ge=0)
    #: Density ratio (confirmed / population + dismissed) from which a confirmed
    #: neighbourhood starts to lift, and at which it lifts fully (log-linear between):
    #: near a confirmed account that looks like many ordinary ones it lifts nothing.
    ratio_from: float = Field(10.0, gt=0)
    ratio_full: float = Field(30.0, gt=0)
    #: After a confirmed label every tracked account is rescored, this many per event
    #: processed (a light account of a campaign may not send a request for hours).
    sweep_per_event: int = Field(4, ge=0)


class LinkageLabels(_Section):
    """How analysts' verdicts act through the links (``detectors/linkage/labels.py``).

    Defaults were chosen on the tuning runs only (``docs/linkage.md``, "Learning from
    analysts").
    """

    #: Confirmed accounts a component of candidate links must hold before it is
    #: alerted whatever the extraction gate says (one confirmed account is one case).
    confirmed_min: int = Field(2, ge=1)
    #: Links at or above this weight tie accounts into one labelled component (the
    #: candidate threshold: every link the stage keeps, ``store_threshold``, by default).
    link_min: float = Field(0.6, ge=0)
    #: A link touching a confirmed account counts this many times its weight.
    confirmed_link_boost: float = Field(1.5, ge=1)
    #: Hops from a confirmed account a component reaches at most.
    max_hops: int = Field(3, ge=1)
    #: Members of one labelled component at most (the closest to the confirmed first).
    max_members: int = Field(2_000, ge=2)
    #: Confirmed and dismissed accounts remembered, each (oldest forgotten first).
    capacity: int = Field(4_096, ge=1)
    #: Risk every member of a confirmed component is reported at (its alert's risk).
    confirmed_risk: float = Field(0.9, ge=0, le=1)


class LinkageKind(_Section):
    """How much one kind of shared evidence counts, and for how long.

    ``weight`` is the contribution of one shared value held by very few accounts;
    ``cap`` bounds the kind's total in one link (sharing five proxy /24s is more than
    sharing one, but not unboundedly); ``max_share`` drops values held by more than
    that share of active accounts (a cloud ASN, a popular SDK user agent); ``group``
    names kinds capped together in ``group_caps``.
    """

    weight: float
    cap: float
    half_life_s: float
    max_share: float
    group: str = ""


def _kind(
    weight: float, cap: float, half_life_s: float, max_share: float, group: str
) -> LinkageKind:
    return LinkageKind(
        weight=weight, cap=cap, half_life_s=half_life_s, max_share=max_share, group=group
    )


#: The in-code defaults equal ``detectors.linkage`` in the shipped ``default.yaml``
#: (tested), so a ``LinkageConfig()`` built without settings detects the same.
DEFAULT_KINDS: dict[str, LinkageKind] = {
    "payment": _kind(1.4, 1.4, 259_200, 0.5, "identity"),
    "net": _kind(0.5, 0.8, 43_200, 0.1, "network"),
    "asn": _kind(0.15, 0.15, 43_200, 0.02, "network"),
    "user_agent": _kind(0.15, 0.15, 86_400, 0.03, "product"),
    "system_prompt": _kind(0.1, 0.1, 86_400, 0.03, "product"),
    "template": _kind(0.8, 0.8, 43_200, 0.1, "product"),
    "template_centroid": _kind(0.8, 0.8, 43_200, 0.1, "product"),
    "sync": _kind(0.8, 0.8, 21_600, 0.2, "timing"),
    "behaviour": _kind(0.3, 0.3, 21_600, 0.05, "behaviour"),
    # A cohort key stands for a group-level test that already weighed chance (see
    # ``detectors/linkage/cohort.py``), so rarity does not scale it; it counts like a card.
    "cohort": _kind(1.4, 1.4, 21_600, 0.5, "cohort"),
    # A campaign-window group (``detectors/linkage/synchrony.py``) was also judged against
    # chance as a group, each member against its own volume; a fleet can be thousands of
    # accounts, so its key is never dropped as common.
    "synchrony": _kind(1.4, 1.4, 43_200, 1.0, "synchrony"),
    # A co-activity fleet (``detectors/linkage/fleet.py``) is a dense group found against
    # chance, re-sighted at every extraction; timing is all it knows, and a group can
    # hold a few bystanders awake in the fleet's hours, so alone it stays below the link
    # threshold: a link needs one more independent group (a template, /24s, onsets).
    "fleet": _kind(0.7, 0.7, 43_200, 1.0, "fleet"),
    # Accounts locked to one controller's clock (``detectors/linkage/phase.py``): each
    # was judged against chance on its own onsets, with a bar that leaves a fraction of
    # an account locked by chance in the whole population, and the clock itself against
    # every period of minutes: it links like a card, and is never common.
    "phase": _kind(1.4, 1.4, 43_200, 1.0, "phase"),
    # A run of four gaps between requests that recurs in another account's
    # (``detectors/linkage/cadence.py``: one recorded person's timing, replayed by a
    # fleet). Counts only from ``cadence_min_shared`` shared runs, each by its rarity.
    "cadence": _kind(0.5, 1.5, 43_200, 0.05, "cadence"),
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
    "synchrony": 1.4,
    "fleet": 0.7,
    "phase": 1.4,
}


#: ``LinkageConfig.extraction_weights``: per-member extraction score of a cluster's members.
DEFAULT_EXTRACTION_WEIGHTS: dict[str, float] = {
    "cot_elicitation_rate": 0.0,
    "logprobs_rate": 1.0,
    "top_logprobs_mean": 1.0,
    "multi_completion_rate": 1.0,
    "capability_share": 0.5,
    "topic_breadth": 1.0,
    "template_repeat_rate": 0.0,
    # what the client permits, not what is taken: people's chat apps ask for 4,096 tokens
    # by default; answers actually taken long are output_input_ratio
    "large_max_tokens_rate": 0.0,
    "output_input_ratio": 1.0,
    "duplicate_prompt_rate": 1.0,
    "repeated_content_rate": 1.0,
    "burst_index": 1.0,
    # fresh benchmark-paced outputs are taken; a regime change or a quota is a schedule
    "novel_rerun_rate": 1.0,
    "duty_cycle_rise": 0.0,
    "daily_volume_dispersion": 0.0,
}


class LinkageConfig(_Section):
    """Every knob of the linkage (hydra cluster) stage: ``detectors.linkage`` in settings.

    See ``docs/linkage.md`` for how they interact. Kinds and group caps given in a
    config file or the environment replace the defaults one by one and field by field
    (``kinds: {payment: {weight: 2.0}}`` keeps the payment cap), so an override names
    only what it changes.

    >>> LinkageConfig(kinds={"payment": {"weight": 2.0}}).kind("payment").cap
    1.4
    >>> LinkageConfig(link_treshold=2.0)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for LinkageConfig
    link_treshold
    ...
    """

    kinds: dict[str, LinkageKind] = Field(default_factory=lambda: dict(DEFAULT_KINDS))
    #: Accumulated link weight at which two accounts belong to one cluster.
    link_threshold: float = Field(1.0, gt=0)
    group_caps: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_GROUP_CAPS))
    #: Candidate links below this are not kept at all (memory).
    store_threshold: float = Field(0.6, ge=0)
    #: Event-time cadence of link scoring and cluster updates.
    eval_interval_s: float = Field(60.0, gt=0)
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
    #: Runs of gaps (``cadence.py``) two accounts must share before cadence counts.
    cadence_min_shared: int = Field(3, ge=1)
    #: Runs of gaps remembered per account (oldest forgotten first); 0 reads none.
    cadence_max_keys: int = Field(16, ge=0)
    #: Accounts busier than this (requests a day over their life) offer no runs.
    cadence_max_daily: float = Field(500.0, gt=0)
    #: Runs of gaps seen by one account so far, remembered in all (oldest first): how
    #: far back a second account's run can meet it.
    cadence_table_size: int = Field(200_000, ge=1)
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
    #: Campaign windows (``synchrony.py``): bin in which burst onsets of distinct
    #: accounts are counted.
    campaign_bin_s: float = Field(120.0, gt=0)
    #: Closed bins whose median onset count is the baseline of the next one.
    campaign_baseline_bins: int = Field(30, ge=1)
    #: Bins seen before any is judged.
    campaign_min_history: int = 10
    #: -log10 Poisson tail of a bin's count, given the baseline, that makes it a
    #: campaign window; it must also exceed the baseline by ``campaign_excess_min``.
    campaign_excess_surprise: float = 3.0
    campaign_excess_min: int = 3
    #: Accounts counted per bin (bound on the state of one window).
    campaign_max_participants: int = 512
    #: An account's chance of hitting a campaign window is this times the share of
    #: bins that are campaign windows (busy hours are shared by everyone).
    campaign_chance_factor: float = 1.3
    #: An account is synchronised when its onsets hit campaign windows at least
    #: ``campaign_min_hits`` times and with binomial -log10 tail at least this.
    campaign_flag_surprise: float = 3.5
    campaign_min_hits: int = 5
    #: ...and those hits are at least this share of its onsets.
    campaign_min_hit_share: float = 0.3
    #: Campaign windows remembered per account, and how long a window is kept.
    campaign_max_windows: int = 16
    campaign_window_ttl_s: float = 3 * 86_400.0
    #: Event-time cadence of grouping synchronised accounts; smallest group keyed.
    campaign_group_interval_s: float = 3600.0
    campaign_min_size: int = 6
    #: Co-activity fleets (``fleet.py``, docs/linkage.md "Co-activity fleets"): bin in
    #: which accounts with a burst onset are co-active.
    fleet_bin_s: float = Field(600.0, gt=0)
    #: A bin of ``c`` accounts ties each pair by ``1 / log(fleet_column_c + c)``.
    fleet_column_c: float = Field(5.0, gt=1)
    #: Every pair of a group is charged this times its chance co-activity.
    fleet_lift: float = Field(2.0, gt=0)
    #: Candidates: accounts with this many onset bins in the window (low volume).
    fleet_min_onsets: int = 3
    fleet_max_onsets: int = 60
    #: Candidates per bin whose pairs are counted.
    fleet_max_bin_members: int = Field(64, ge=2)
    #: Bins remembered (event time).
    fleet_window_s: float = 4 * 86_400.0
    #: Event-time cadence of the peeling; smallest group; least excess per member;
    #: most groups taken per extraction.
    fleet_interval_s: float = 12 * 3600.0
    fleet_min_size: int = 6
    fleet_min_density: float = 1.6
    fleet_max_groups: int = 8
    #: A group is keyed only when at least this share of its (sampled) members extract
    #: (and ``extraction_share_min``); then only its extracting members are keyed.
    fleet_extraction_share_min: float = Field(0.8, ge=0, le=1)
    #: Controllers' clocks (``phase.py``, docs/linkage.md "A controller's clock"):
    #: onsets remembered (event time), the span searched for a period, the bin of that
    #: search, and the periods looked at.
    phase_window_s: float = 4 * 86_400.0
    phase_search_s: float = Field(12 * 3600.0, gt=0)
    phase_resolution_s: float = Field(2.0, gt=0)
    phase_min_period_s: float = Field(60.0, gt=0)
    phase_max_period_s: float = Field(3600.0, gt=0)
    #: Pooled Rayleigh power a clock needs (chance: Exp(1) per period, ~8 at most over
    #: the ~3,000 periods of a 12 h search).
    phase_min_power: float = 30.0
    #: Candidates: accounts with this many onsets in the window (light accounts).
    phase_min_onsets: int = 5
    phase_max_onsets: int = 60
    #: Accounts expected locked by chance among all the candidates scored: sets the bar
    #: on each account's phase score (Bonferroni).
    phase_false_locks: float = Field(0.2, gt=0, lt=1)
    #: Multiples of the phase an account's score projects on (a tick is a narrow peak),
    #: and decoy periods the same accounts are scored at to read the bar off chance.
    phase_harmonics: int = Field(2, ge=1, le=8)
    phase_decoys: int = Field(32, ge=0, le=256)
    #: The bar never goes below this score (a small population's quantiles are low).
    phase_min_score: float = 3.5
    #: Smallest locked group keyed; clocks looked for per search; event-time cadence.
    phase_min_size: int = 6
    phase_max_clocks: int = 2
    phase_interval_s: float = 6 * 3600.0
    #: Template band keys remembered per account before it is known to repeat them.
    max_template_candidates: int = 64
    #: Minimum seconds between two behaviour-vector observations of one account.
    behaviour_interval_s: float = 600.0
    #: Smallest cluster that raises an alert.
    min_alert_size: int = 4
    #: Cluster risk at and above which a cluster alert is raised.
    alert_risk: float = 0.7
    #: A cluster alert means coordinated *and* extracting (DESIGN.md, "Honest groups act
    #: together too"). Each member's extraction score is the sum of its rule signals'
    #: own log-odds (``AccountPipeline.signal_logodds``, captured when it was scored)
    #: times these weights; signals not named count 0. Reasoning elicitation and
    #: template repetition count 0: in a templated cluster they are the template's (a
    #: course's "explain step by step"), which the links already counted as
    #: coordination. A large ``max_tokens`` counts 0 too: it is the client's setting
    #: (many people's apps ask for 4,096), not what was taken; long answers actually
    #: received are ``output_input_ratio``. Exculpatory signals (reruns, repeated
    #: content, bursts) keep their negative log-odds. Tuned on the tuning runs
    #: (``docs/linkage.md``).
    extraction_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_EXTRACTION_WEIGHTS)
    )
    #: A member counts as extracting from this extraction score (log-odds).
    member_extraction_min: float = 0.4
    #: A cluster is extracting when at least this share of its (sampled) members is;
    #: only then is it alerted and do its members inherit its risk.
    extraction_share_min: float = Field(0.55, ge=0, le=1)
    #: Client settings (their rule signals, weighted like ``extraction_weights``) that
    #: count towards a member's extraction score only while at least
    #: ``shared_setting_share`` of the cluster's sampled members have them: one
    #: operator's configuration asking every account for the longest answers is part of
    #: a harvest; the same setting on a third of a course's accounts is people's own
    #: chat apps (issue 11, docs/linkage.md "A course is not a campaign").
    shared_setting_weights: dict[str, float] = Field(
        default_factory=lambda: {"large_max_tokens_rate": 1.0}
    )
    shared_setting_share: float = Field(0.8, ge=0, le=1)
    #: Risk reported for a coordinated cluster that is not extracting: visible in the
    #: clusters view, below ``alert_risk``.
    coordination_risk_cap: float = Field(0.6, ge=0, le=1)
    #: Evidence groups that do not count between two accounts of one ``org_id`` unless
    #: both members extract: what an organisation's members naturally share (its card,
    #: its NAT, its templates and system prompt, its onboarding day).
    org_shared_groups: list[str] = Field(
        default_factory=lambda: [
            "identity",
            "network",
            "product",
            "cohort",
            "synchrony",
            "fleet",
            "phase",
            "cadence",
        ]
    )
    #: ... "both extract" meaning each scores at least this (higher than
    #: ``member_extraction_min``: inside one org nothing but behaviour ties them, and an
    #: eval vendor's first nightly run with logprobs scores ~0.9 before its reruns show).
    org_extraction_min: float = 1.2
    #: Content provenance (``provenance.py``, docs/linkage.md "Content provenance"): a
    #: cluster whose members never send one item where independent draws from the
    #: population would collide is one dispatcher's sweep, and counts as extracting.
    provenance_gate: bool = True
    #: Item keys are taken of every prompt of an account's first ``provenance_first``
    #: requests, then of one in ``provenance_every``.
    provenance_first: int = Field(16, ge=0)
    provenance_every: int = Field(64, ge=1)
    #: (item key, time) pairs remembered per account, the most recent.
    provenance_keys_per_account: int = Field(32, ge=1)
    #: A word trigram seen in this many distinct prompts is boilerplate, not an item.
    provenance_boilerplate_min: int = Field(24, ge=2, le=255)
    #: Windows (seconds; 0 = all remembered) within which members' collisions count.
    provenance_windows_s: list[float] = Field(default_factory=lambda: [21_600.0, 86_400.0, 0.0])
    #: Too little volume to judge below this many expected collisions.
    provenance_min_expected: float = Field(6.0, gt=0)
    #: A sweep shows at most this share of the expected collisions.
    provenance_max_ratio: float = Field(0.5, ge=0)
    #: -log10 chance of so few collisions from which the cluster counts as extracting.
    provenance_score_min: float = Field(3.0, gt=0)
    #: A cluster's provenance is judged again at most this often (event time).
    provenance_interval_s: float = Field(3600.0, ge=0)
    #: An alerted cluster's alert is updated when members join or its level rises, at
    #: most once per this many seconds of event time.
    realert_interval_s: float = 300.0
    #: Members listed per evidence item in an alert.
    evidence_accounts: int = 50
    #: Evidence items per alert.
    evidence_items: int = 12
    #: Analysts' verdicts acting through the links.
    labels: LinkageLabels = LinkageLabels()

    @model_validator(mode="before")
    @classmethod
    def _merge_with_default_kinds(cls, data: Any) -> Any:
        """Partial kinds and group caps complete themselves from the defaults."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        given = data.get("kinds") or {}
        unknown = set(given) - set(DEFAULT_KINDS)
        if unknown:
            raise ValueError(
                f"unknown evidence kinds {sorted(unknown)} (known: {sorted(DEFAULT_KINDS)})"
            )
        kinds: dict[str, Any] = {n: k.model_dump() for n, k in DEFAULT_KINDS.items()}
        for name, params in given.items():
            if isinstance(params, BaseModel):
                params = params.model_dump()
            kinds[name] = {**kinds[name], **params} if isinstance(params, dict) else params
        data["kinds"] = kinds
        data["group_caps"] = {**DEFAULT_GROUP_CAPS, **(data.get("group_caps") or {})}
        data["extraction_weights"] = {
            **DEFAULT_EXTRACTION_WEIGHTS,
            **(data.get("extraction_weights") or {}),
        }
        return data

    @model_validator(mode="after")
    def _cadence(self) -> LinkageConfig:
        if self.revalidate_interval_s < self.eval_interval_s:
            raise ValueError("need eval_interval_s <= revalidate_interval_s")
        return self

    def kind(self, name: str) -> LinkageKind:
        return self.kinds[name]


class Detectors(_Section):
    """The account detectors (``detectors/``): cadence, thresholds, rules, models."""

    pipeline: Literal["linked", "account", "counting"] = "linked"
    #: risk at which an account alert opens (evaluate reads this too)
    alert_threshold: float = Field(0.7, ge=0, le=1)
    #: an open alert is re-raised as an update when risk grows by this much, or when
    #: the account's events since the last raise have doubled
    realert_delta: float = Field(0.1, gt=0)
    #: drain() reports an account's risk when it moved by at least this much
    risk_change: float = Field(0.05, ge=0)
    #: no alert before an account has this many events (too little evidence)
    min_events: int = Field(10, ge=1)
    #: no first alert before the account's activity spans this much event time
    min_span_s: float = Field(600.0, ge=0)
    #: score an account at 4, 8, 16, ... events up to ``score_every``, then every
    #: ``score_every`` events, and at least every ``score_interval_s`` of event time
    score_every: int = Field(32, ge=1)
    score_interval_s: float = Field(1800.0, gt=0)
    #: analyse every prompt of an account's first ``text_full_events`` events, then
    #: one in ``text_sample_every`` (shares stay unbiased; see bench/detectors.py)
    text_full_events: int = Field(32, ge=0)
    text_sample_every: int = Field(8, ge=1)
    #: an account feeds the population statistics at most once per this much event time
    population_interval_s: float = Field(900.0, gt=0)
    #: accounts idle this long (event time) are forgotten
    idle_evict_s: float = Field(3 * 86_400.0, gt=0)
    max_accounts: int = Field(2_000_000, ge=1)
    #: each account's last request times kept for the cluster page's timeline (4 bytes
    #: each, in the account's checkpoint); 0 keeps none. 64 (256 B + an 80 B array
    #: header) keeps the ring under 400 B per account; 96 would cost ~470 B
    request_times_kept: int = Field(64, ge=0, le=1024)
    #: members a drained cluster's timeline shows (the most active); the rest are counted
    timeline_members: int = Field(40, ge=1, le=500)
    #: a model first seen at least ``new_model_after_s`` into the stream is "new" for
    #: ``new_model_window_s`` (model-release pivot)
    new_model_after_s: float = Field(6 * 3600.0, ge=0)
    new_model_window_s: float = Field(48 * 3600.0, gt=0)
    bias: float = -6.0
    rules: list[DetectorRule] = Field(default_factory=list)
    #: (group, group, weight): log-odds added per unit of both groups' evidence
    interactions: list[tuple[str, str, float]] = Field(default_factory=list)
    anomaly: DetectorAnomaly = DetectorAnomaly()
    feedback: DetectorFeedback = DetectorFeedback()
    #: Platt scaling of the fused log-odds: risk = sigmoid(scale * logit + shift)
    calibration_scale: float = 1.0
    calibration_shift: float = 0.0
    #: the linkage (hydra cluster) stage, ``detectors/linkage``
    linkage: LinkageConfig = LinkageConfig()


class Settings(BaseSettings):
    """Everything a distillguard process can be told."""

    model_config = SettingsConfigDict(
        env_prefix="DISTILLGUARD_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    topics: Topics = Topics()
    worker: Worker = Worker()
    validation: Validation = Validation()
    # Sections owned by later stages (sim) are plain mappings until
    # those stages give them a model; unknown keys are kept, not rejected.
    detectors: Detectors = Detectors()
    api: Api = Api()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFiles(settings_cls))


class _YamlFiles(PydanticBaseSettingsSource):
    """The shipped ``default.yaml`` merged with the file named by ``DISTILLGUARD_CONFIG``."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        merged = load_yaml(shipped_config("default.yaml"))
        if extra := os.environ.get(CONFIG_ENV):
            path = Path(extra)
            if not path.is_file():
                raise FileNotFoundError(f"config file not found: {path}")
            _deep_merge(merged, load_yaml(path))
        return merged


def load_yaml(path: Path | Traversable) -> dict[str, Any]:
    """A YAML mapping from a file or a packaged resource (the top level must be a mapping)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    return data


def _deep_merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def use_config(path: Path | None) -> None:
    """Point the process at an extra config file (the CLI's ``--config``)."""
    if path is not None:
        os.environ[CONFIG_ENV] = str(path.resolve())
    get_settings.cache_clear()
