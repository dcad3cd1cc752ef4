"""The checkpoint format: every piece of detector state as a typed, versioned msgspec Struct.

Why typed: the worker checkpoints pipeline state into Redis and reads it back after a
restart or a rebalance, possibly with the next release. Positional lists broke every
stored checkpoint with one added field, and a shared snapshot that wrapped msgpack
bytes and JSON bytes inside msgpack could only be checked layer by layer. Here every
piece of state is a ``kw_only`` Struct with named fields, the whole shared snapshot
is one msgpack map, and decoding is typed (``msgspec.msgpack.Decoder(SharedCheckpoint)``):
a corrupt, truncated or foreign blob fails in the decoder with a ValueError naming
the field (``... at `$.linkage.graph.holders[3].keys```), before anything is changed.
Nothing decoded is ever executed: no pickle, only numbers, strings, bytes and lists.

Two envelopes, each one msgpack map with an explicit ``kind`` and ``version``:

- :class:`AccountCheckpoint` (``kind="account"``): one account's state
  (:class:`TrackedState`), written per account by ``snapshot_accounts`` so the worker
  checkpoints by partition;
- :class:`SharedCheckpoint` (``kind="shared"``): the clock, the account pipeline's
  models and population (:class:`AccountPipelineState`), the linkage stage
  (:class:`LinkageState`) and the linked pipeline's published memberships, written by
  ``snapshot_shared``. Parts a pipeline does not have are absent, so an ``account``
  checkpoint restores into a ``linked`` pipeline (and back) with what they share.

How to evolve the format
------------------------
- **Add a field**: give it a default that reproduces what the code did before the
  field existed. No version bump: older checkpoints decode with the default, and
  older code ignores the new field (``forbid_unknown_fields=False``), so a rollback
  reads a newer checkpoint too.
- **Never change a default** (fields at their default are not even written, see
  ``_State``), **a field's meaning, unit or type, never rename or remove a field**
  without bumping :data:`FORMAT_VERSION` and adding a migration to
  :data:`ACCOUNT_MIGRATIONS` / :data:`SHARED_MIGRATIONS`: a function from the plain
  (``msgspec.to_builtins``) form of version ``n`` to that of ``n + 1``. Old
  checkpoints are decoded untyped, migrated step by step, then validated.
- Code refuses a checkpoint of a *newer* version with a ValueError (the worker then
  starts fresh and logs it): it cannot know what the newer fields mean.
- Each released version keeps a checkpoint it wrote as a test fixture
  (``tests/fixtures/state/v<N>/``, written by ``tests/state_fixture.py``), and
  ``tests/test_state_versions.py`` restores every one of them.

Version 0 is the format before this module (positional lists, msgpack around msgpack
and JSON). It is migrated, not rejected: a deploy keeps what the pipeline learnt.
Records embedded here (:class:`~distillguard.records.Reason`,
:class:`~distillguard.records.Evidence`) are part of the format as well.

Examples
--------
>>> tracked = TrackedState(risk=0.25, org_id="org-1")
>>> blob = encode_account(tracked)
>>> decode_account(blob).risk, decode_account(blob).state.n
(0.25, 0)
>>> decode_account(b"\\x93\\x01\\x02\\x03")
Traceback (most recent call last):
ValueError: not a distillguard account checkpoint: Expected `object`, got `array`
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import msgspec

from distillguard.clock import ClockState
from distillguard.records import Evidence, Reason

__all__ = [
    "ACCOUNT_MIGRATIONS",
    "FORMAT_VERSION",
    "SHARED_MIGRATIONS",
    "AccountCheckpoint",
    "AccountPipelineState",
    "AccountStateData",
    "AnomalyState",
    "BookState",
    "ClusterState",
    "FeedbackState",
    "GraphState",
    "HolderState",
    "LabelCaseState",
    "LabelLinksState",
    "LinkageState",
    "LogisticState",
    "OpenAlertState",
    "QuantilesState",
    "SharedCheckpoint",
    "SynchronyState",
    "TrackedState",
    "ValueState",
    "as_state",
    "decode_account",
    "decode_shared",
    "encode_account",
    "encode_shared",
    "le_array",
    "le_bytes",
]

#: the version this code writes; bump only with a migration (see the module docstring)
FORMAT_VERSION = 1

_NEG_INF = -math.inf
S = TypeVar("S", bound=msgspec.Struct)


class _State(msgspec.Struct, kw_only=True, forbid_unknown_fields=False, omit_defaults=True):
    """Base of every state Struct: named fields, unknown (newer) fields ignored.

    Fields at their default are left out of the encoding: field names cost bytes per
    account, and most counters of most accounts are zero. Decoding fills them back
    in, which is one more reason a default must never change.
    """


# -- per account ------------------------------------------------------------------------


class AccountStateData(_State):
    """:class:`~distillguard.detectors.features.account.AccountState`: one field per slot.

    The float32 histograms and the uint64 skeleton ring travel as little-endian bytes
    (exact, and a third of a list of msgpack floats); empty bytes mean all zeros.
    """

    n: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    rate_short: float = 0.0
    rate_long: float = 0.0
    out_long: float = 0.0
    ew_count: float = 0.0
    ew_logprobs: float = 0.0
    ew_top_logprobs: float = 0.0
    ew_multi_n: float = 0.0
    ew_temp0: float = 0.0
    ew_large_max: float = 0.0
    ew_tools: float = 0.0
    ew_rate_limited: float = 0.0
    ew_scripted: float = 0.0
    ew_ip_change: float = 0.0
    ew_new_model: float = 0.0
    ew_input: float = 0.0
    ew_output: float = 0.0
    ew_gap_n: float = 0.0
    ew_gap: float = 0.0
    ew_gap2: float = 0.0
    ew_fast_gap: float = 0.0
    ew_retry_n: float = 0.0
    ew_retry_fast: float = 0.0
    analysed: int = 0
    text_count: float = 0.0
    text_cot: float = 0.0
    text_template: float = 0.0
    dup: float = 0.0
    #: float32 per prompt topic, little-endian
    topics: bytes = b""
    #: float32 per hour of day, little-endian
    hours: bytes = b""
    hour_total: float = 0.0
    last_hour: int = -1
    n_hours: int = 0
    last_minute: int = -1
    n_minutes: int = 0
    #: uint64 skeleton hashes (heads, tails, contents), little-endian
    recent: bytes = b""
    #: the long-horizon content Bloom filter
    seen: bytes = b""
    repeat_inserted: int = 0
    repeat_count: float = 0.0
    repeat_hits: float = 0.0
    last_ip: str = ""
    last_ua: str = ""
    last_ua_scripted: bool = False
    last_status_429: bool = False
    #: regime (added without a version bump: the defaults are a fresh account's)
    #: bit i = active in the clock hour ``last_hour - i``, for the last 24 hours
    hour_mask: int = 0
    #: UTC day index of the latest event (-1 before any) and its requests so far
    day: int = -1
    day_count: int = 0
    #: exponentially weighted (per day) sums over closed days: weight, squared weight,
    #: count, squared count
    days_w: float = 0.0
    days_w2: float = 0.0
    days_s1: float = 0.0
    days_s2: float = 0.0
    days_done: int = 0
    active_days: int = 0
    #: prompts hashed for repeats since the account's first day ended
    hashed_later: int = 0


class OpenAlertState(_State):
    """An account's open alert (:class:`~distillguard.detectors.alerts.OpenAlert`)."""

    alert_id: str
    created_ts: float
    risk: float
    events: int
    first_event_ts: float


class TrackedState(_State):
    """:class:`~distillguard.detectors.tracked.Tracked`: behaviour state and scoring state."""

    state: AccountStateData = msgspec.field(default_factory=AccountStateData)
    risk: float = 0.0
    reasons: list[Reason] = []
    #: each rule signal's own log-odds at the last scoring (absent in older states)
    signals: dict[str, float] = {}
    next_score_n: int = 4
    last_scored_ts: float = _NEG_INF
    last_pop_ts: float = _NEG_INF
    drained_risk: float = 0.0
    alert: OpenAlertState | None = None
    first_alert_ts: float | None = None
    samples: list[str] | None = None
    org_id: str | None = None
    #: the account's last request times (``detectors/request_times.py``): uint32 epoch
    #: seconds, little-endian, oldest first; empty in older states (an empty timeline)
    request_times: bytes = b""


# -- account pipeline, shared across accounts -------------------------------------------


class QuantilesState(_State):
    """:class:`~distillguard.detectors.scorers.population.PopulationQuantiles` histograms."""

    max_weight: float = 50_000.0
    counts: dict[str, list[float]] = {}
    totals: dict[str, float] = {}


class AnomalyState(_State):
    """:class:`~distillguard.detectors.scorers.anomaly.PopulationAnomaly` (river HST).

    Trees as they were saved before typed state: each a pre-order node list,
    ``[feature, threshold, l_mass, r_mass]`` per branch and ``[l_mass, r_mass]`` per leaf.
    """

    n_trees: int = 10
    height: int = 8
    window_size: int = 250
    seed: int = 42
    counter: int = 0
    first_window: bool = True
    trees: list[list[list[str | float]]] = []


class LogisticState(_State):
    """The river logistic regression inside the label feedback."""

    weights: dict[str, float] = {}
    intercept: float = 0.0
    iterations: int = 0


class FeedbackState(_State):
    """:class:`~distillguard.detectors.scorers.feedback.LabelFeedback`: parameters, labels."""

    bandwidth: float = 0.05
    strength: float = 3.0
    max_adjustment: float = 4.0
    capacity: int = 512
    min_per_class: int = 10
    benign: list[list[float]] = []
    distiller: list[list[float]] = []
    seen_benign: int = 0
    seen_distiller: int = 0
    lr: LogisticState = msgspec.field(default_factory=LogisticState)
    #: a ring of recent population vectors (the density a confirmed label is judged
    #: against) and where the next one goes; empty in older checkpoints
    population: list[list[float]] = []
    population_next: int = 0


class AccountPipelineState(_State):
    """What the account pipeline shares across accounts: models, population, model ages."""

    population: QuantilesState = msgspec.field(default_factory=QuantilesState)
    anomaly: AnomalyState = msgspec.field(default_factory=AnomalyState)
    anomaly_scores: QuantilesState = msgspec.field(default_factory=QuantilesState)
    feedback: FeedbackState = msgspec.field(default_factory=FeedbackState)
    #: model name -> first seen (event time), for the release-pivot signal
    models: dict[str, float] = {}
    stream_start: float | None = None
    events: int = 0
    #: accounts still to be rescored after a confirmed label, next first
    sweep: list[str] = []


# -- linkage ----------------------------------------------------------------------------


class HolderState(_State):
    """:class:`~distillguard.detectors.linkage.graph.Holder`: one account's evidence."""

    id: str
    first_ts: float
    last_ts: float
    refreshed: float
    behaviour_ts: float = _NEG_INF
    events: int = 0
    out_tokens: int = 0
    onsets: int = 0
    onset_first: int = 0
    org: str | None = None
    snippet: str | None = None
    #: evidence key -> last sighting
    keys: dict[str, float] = {}
    #: template band -> [sightings with distinct content, crc of the last content]
    tpl: dict[str, list[int]] = {}
    #: last raw value and key per slot (payment, ip, asn, user agent, system prompt)
    raw: list[str | int | None] = []
    fp_bits: list[int] | None = None
    centroid: int | None = None
    #: the last three gaps between its requests, binned and packed (``cadence.py``), and
    #: how many of them are in the current run
    gap_run: int = 0
    gap_n: int = 0


class ValueState(_State):
    """One evidence value's holders, in arrival order (the earliest are anchors)."""

    members: list[str] = []
    recent: list[str] = []
    common: bool = False
    last_seen: float = 0.0


class GraphState(_State):
    """:class:`~distillguard.detectors.linkage.graph.EvidenceGraph`: holders and values."""

    holders: list[HolderState] = []
    values: dict[str, ValueState] = {}


class BookState(_State):
    """:class:`~distillguard.detectors.linkage.clusters.ClusterBook`: membership, id counter."""

    seq: int = 0
    clusters: dict[str, list[str]] = {}


class ClusterState(_State):
    """The linkage stage's score and alert bookkeeping of one cluster (also live state)."""

    risk: float = 0.0
    alerted: bool = False
    first_alert_ts: float | None = None
    last_alert_ts: float | None = None
    alerted_members: list[str] = msgspec.field(default_factory=list)
    alert_level: str = "low"
    mean_link: float = 0.0
    member_risk: float = 0.0
    evidence: list[Evidence] = msgspec.field(default_factory=list)
    #: share of (sampled) members whose own behaviour looks like extraction; 1.0 when
    #: the stage runs without the account detectors (and in older checkpoints)
    extracting_share: float = 1.0
    #: content-provenance score of the (sampled) members (``provenance.py``): > 0 when
    #: they look like one dispatcher's sweep of a shared source; its explanation
    provenance: float = 0.0
    provenance_detail: str = ""
    #: event time of that judgement (re-judged at most every ``provenance_interval_s``)
    provenance_ts: float = _NEG_INF
    #: the sampled members share their client settings (``shared_setting_share``), so
    #: each member's settings count in its own member test too
    settings_shared: bool = False
    #: the members it implicates as of its last scoring (``LinkageStage._implicated``):
    #: named by its alert, and inheriting its risk while it is alerted; None in a
    #: checkpoint from before alerts named members (then every member, as they did,
    #: until the cluster is scored again)
    named: list[str] | None = None


class ProvenanceState(_State):
    """:class:`~distillguard.detectors.linkage.provenance.ProvenanceSketch` and its keyer."""

    total: int = 0
    #: two rows of uint16 item counts (count-min), little-endian like every array here
    counts_a: bytes = b""
    counts_b: bytes = b""
    #: account -> uint32 pairs (item key, event time), oldest first
    sends: dict[str, bytes] = {}
    #: the item keyer's boilerplate table (distinct prompts per trigram slot, uint8) and
    #: the crcs of the prompts it counted last, oldest first
    seen: bytes = b""
    recent: list[int] = []


class SynchronyState(_State):
    """:class:`~distillguard.detectors.linkage.synchrony.CampaignWindows`: campaign windows."""

    #: the open bin and the accounts with an onset in it
    bin: int | None = None
    members: list[str] = []
    #: onset counts of the last closed bins (the baseline)
    history: list[int] = []
    bins_judged: int = 0
    excess_bins: int = 0
    #: judged bins and campaign windows per hour of the day (UTC)
    hour_judged: list[int] = []
    hour_excess: list[int] = []
    #: account -> [onsets in judged bins, onsets in campaign windows, *last windows]
    accounts: dict[str, list[int]] = {}
    #: account -> campaign windows its onsets would hit by chance, at their hours
    expected: dict[str, float] = {}
    #: recent campaign windows (bin index) -> participants
    windows: dict[int, list[str]] = {}


class FleetState(_State):
    """:class:`~distillguard.detectors.linkage.fleet.CoActivityFleets`: co-activity bins."""

    #: the open bin and the accounts with an onset in it
    bin: int | None = None
    members: list[str] = []
    #: closed bins of the window -> accounts with an onset in each
    counts: dict[int, int] = {}
    #: account -> its last onset bins, oldest first
    recent: dict[str, list[int]] = {}


#: one account's :class:`SamplerState` entry
SamplerEntry = tuple[
    int, float, float, str | None, str | None, int | None, str | None, str | None, str | None
]


class SamplerState(_State):
    """:class:`~distillguard.detectors.linkage.sampling.RequestSampler`: per account,
    what decides which of its requests' prompts and attributes the linkage reads."""

    #: account -> (count, latest request time, last refresh, then the last payment
    #: fingerprint, ip, asn, user agent, system prompt and org read)
    entries: dict[str, SamplerEntry] = {}


class PhaseState(_State):
    """:class:`~distillguard.detectors.linkage.phase.PhaseClocks`: recent onset times."""

    #: account -> its last onset times in whole seconds, oldest first
    recent: dict[str, list[int]] = {}


class LinkageState(_State):
    """:class:`~distillguard.detectors.linkage.stage.LinkageStage`, its clock aside."""

    next_eval: float = _NEG_INF
    next_revalidate: float = _NEG_INF
    graph: GraphState = msgspec.field(default_factory=GraphState)
    #: stored links (account, account, weight) in the order the stage keeps them
    links: list[tuple[str, str, float]] = []
    book: BookState = msgspec.field(default_factory=BookState)
    clusters: dict[str, ClusterState] = {}
    pending: list[tuple[str, str]] = []
    dirty: list[str] = []
    rescore: list[str] = []
    realert: list[str] = []
    changed: list[str] = []
    #: feature name -> (count, mean, M2) of the behaviour bands' standardisation
    behaviour: dict[str, tuple[float, float, float]] = {}
    newcomers: list[str] = []
    cohort_due: bool = False
    #: content provenance (None in checkpoints written before it existed)
    provenance: ProvenanceState | None = None
    #: campaign windows (``synchrony.py``); empty in checkpoints written before them
    synchrony: SynchronyState = msgspec.field(default_factory=SynchronyState)
    next_sync_group: float = _NEG_INF
    #: co-activity fleets (``fleet.py``); empty in checkpoints written before them
    fleet: FleetState = msgspec.field(default_factory=FleetState)
    next_fleet_group: float = _NEG_INF
    #: controllers' clocks (``phase.py``); empty in checkpoints written before them
    phase: PhaseState = msgspec.field(default_factory=PhaseState)
    next_phase_group: float = _NEG_INF
    #: which prompts it reads (``sampling.py``); None in checkpoints written before it
    sampler: SamplerState | None = None
    #: runs of gaps shown by one account so far (``cadence.py``): (run, account, time)
    runs: list[tuple[int, str, float]] = []


class LabelCaseState(_State):
    """One component of links holding confirmed accounts (``linkage/labels.py``)."""

    members: list[str] = []
    confirmed: list[str] = []
    first_alert_ts: float | None = None
    #: members as of the last alert raised for it
    alerted_members: list[str] = []


class LabelLinksState(_State):
    """:class:`~distillguard.detectors.linkage.labels.AnalystLinks`: verdicts and cases."""

    #: (account, event time of the verdict), oldest first
    confirmed: list[tuple[str, float]] = []
    dismissed: list[tuple[str, float]] = []
    #: +inf while there is nothing to judge
    next_eval: float = math.inf
    cases: dict[str, LabelCaseState] = {}


class MembersState(_State):
    """The cluster stage's member table (split topology): what the account stage said of
    each account (risk, extraction, setting), and its requests for the timeline."""

    scores: dict[str, list[float]] = {}
    requests: dict[str, int] = {}
    #: little-endian uint32 request times, oldest first (``request_times.to_bytes``)
    times: dict[str, bytes] = {}


# -- envelopes --------------------------------------------------------------------------


class AccountCheckpoint(_State):
    """One account's checkpoint (``snapshot_accounts``)."""

    kind: Literal["account"]
    version: int
    tracked: TrackedState


class SharedCheckpoint(_State):
    """Everything not owned by one account (``snapshot_shared``); absent parts are None."""

    kind: Literal["shared"]
    version: int
    clock: ClockState = msgspec.field(default_factory=ClockState)
    account: AccountPipelineState | None = None
    linkage: LinkageState | None = None
    #: the linked pipeline's cluster members as last drained (whose risks it reported)
    published: dict[str, list[str]] = {}
    #: every account's state, in a full ``AccountPipeline.snapshot()`` only
    accounts: dict[str, TrackedState] | None = None
    #: the linked pipeline's analysts' verdicts acting through links (absent before)
    labels: LabelLinksState | None = None
    #: the cluster stage's member table (``--stage cluster``)
    members: MembersState | None = None


_ENCODER = msgspec.msgpack.Encoder()
_ACCOUNT_DECODER = msgspec.msgpack.Decoder(AccountCheckpoint)
_SHARED_DECODER = msgspec.msgpack.Decoder(SharedCheckpoint)


def encode_account(tracked: TrackedState) -> bytes:
    """One account's checkpoint blob."""
    return _ENCODER.encode(
        AccountCheckpoint(kind="account", version=FORMAT_VERSION, tracked=tracked)
    )


def encode_shared(
    *,
    clock: ClockState,
    account: AccountPipelineState | None = None,
    linkage: LinkageState | None = None,
    published: dict[str, list[str]] | None = None,
    accounts: dict[str, TrackedState] | None = None,
    labels: LabelLinksState | None = None,
    members: MembersState | None = None,
) -> bytes:
    """The shared checkpoint blob: one msgpack map, whatever parts the pipeline has."""
    return _ENCODER.encode(
        SharedCheckpoint(
            kind="shared",
            version=FORMAT_VERSION,
            clock=clock,
            account=account,
            linkage=linkage,
            published=published or {},
            accounts=accounts,
            labels=labels,
            members=members,
        )
    )


def decode_account(data: bytes) -> TrackedState:
    """An account checkpoint's state; ValueError (saying why) if it is not one we read."""
    return _decode(data, _ACCOUNT_DECODER, AccountCheckpoint, ACCOUNT_MIGRATIONS).tracked


def decode_shared(data: bytes) -> SharedCheckpoint:
    """A shared checkpoint; ValueError (saying why) if it is not one we read."""
    return _decode(data, _SHARED_DECODER, SharedCheckpoint, SHARED_MIGRATIONS)


def as_state(value: Any, state_type: type[S]) -> S:
    """``value`` as a ``state_type``: as it is, or validated from plain msgpack values.

    Lets each class's ``from_state`` take its Struct (typed decoding already checked
    it) or the plain form of one (what a bare ``msgspec.msgpack.decode`` gives).
    """
    if isinstance(value, state_type):
        return value
    try:
        return msgspec.convert(value, state_type)
    except msgspec.ValidationError as exc:
        raise ValueError(f"not a valid {state_type.__name__}: {exc}") from None


def le_bytes(values: array[Any]) -> bytes:
    """A numeric array as little-endian bytes: exact, compact, the same on every machine."""
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def le_array(typecode: str, data: bytes) -> array[Any]:
    """Inverse of :func:`le_bytes` (ValueError if ``data`` is not whole items)."""
    values = array(typecode)
    values.frombytes(data)
    if sys.byteorder == "big":
        values.byteswap()
    return values


C = TypeVar("C", AccountCheckpoint, SharedCheckpoint)


def _decode(
    data: bytes,
    decoder: msgspec.msgpack.Decoder[C],
    envelope: type[C],
    migrations: dict[int, Callable[[Any], Any]],
) -> C:
    kind = "account" if envelope is AccountCheckpoint else "shared"
    try:
        checkpoint = decoder.decode(data)
        if checkpoint.version == FORMAT_VERSION:
            return checkpoint
        failure = f"format {checkpoint.version}"
    except msgspec.DecodeError as exc:
        failure = str(exc)
    # Not the current format: an older one to migrate, a newer one, or not ours at all.
    doc = _plain(data)
    version = _version_of(doc, kind)
    if version is None:
        raise ValueError(f"not a distillguard {kind} checkpoint: {failure}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{kind} checkpoint of format {version} was written by a newer release; "
            f"this one reads formats up to {FORMAT_VERSION}"
        )
    if version == FORMAT_VERSION:
        raise ValueError(f"corrupt {kind} checkpoint (format {version}): {failure}")
    try:
        for step in range(version, FORMAT_VERSION):
            doc = migrations[step](doc)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"corrupt {kind} checkpoint of format {version}: {exc!r}") from None
    try:
        return msgspec.convert(doc, envelope)
    except msgspec.ValidationError as exc:
        raise ValueError(f"corrupt {kind} checkpoint of format {version}: {exc}") from None


def _plain(data: bytes) -> Any:
    """Untyped msgpack (or, for the version-0 linkage stage alone, JSON); None if neither."""
    try:
        return msgspec.msgpack.decode(data)
    except msgspec.DecodeError:
        pass
    if data[:1] == b"{":
        try:
            return msgspec.json.decode(data)
        except msgspec.DecodeError:
            pass
    return None


def _version_of(doc: Any, kind: str) -> int | None:
    """The format version of a plain checkpoint of ``kind``; None if it is not one."""
    if isinstance(doc, dict) and doc.get("kind") == kind:
        version = doc.get("version")
        return version if isinstance(version, int) and not isinstance(version, bool) else None
    if kind == "account":
        return 0 if isinstance(doc, list) and len(doc) == len(_V0_TRACKED) else None
    if isinstance(doc, dict) and doc.get("format") in (_V0_ACCOUNT_FORMAT, _V0_LINKED_FORMAT):
        return 0
    if isinstance(doc, dict) and doc.get("version") == 1 and "graph" in doc:
        return 0  # a version-0 linkage stage snapshot (JSON) on its own
    return None


# -- version 0: before typed state --------------------------------------------------------
# The layouts below are history: what the code before this module wrote. Never edit them.

_V0_ACCOUNT_FORMAT = "distillguard.detectors.account/1"
_V0_LINKED_FORMAT = "distillguard-linked/1"
#: Tracked.to_state() positions
_V0_TRACKED = (
    "state", "risk", "reasons", "next_score_n", "last_scored_ts", "last_pop_ts",
    "drained_risk", "alert", "first_alert_ts", "samples", "org_id",
)  # fmt: skip
#: AccountState.to_state() positions (its __slots__ then)
_V0_ACCOUNT_STATE = (
    "_hour_total", "analysed", "dup", "ew_count", "ew_fast_gap", "ew_gap", "ew_gap2",
    "ew_gap_n", "ew_input", "ew_ip_change", "ew_large_max", "ew_logprobs", "ew_multi_n",
    "ew_new_model", "ew_output", "ew_rate_limited", "ew_retry_fast", "ew_retry_n",
    "ew_scripted", "ew_temp0", "ew_tools", "ew_top_logprobs", "first_ts", "hours",
    "last_hour", "last_ip", "last_minute", "last_status_429", "last_ts", "last_ua",
    "last_ua_scripted", "n", "n_hours", "n_minutes", "out_long", "rate_long", "rate_short",
    "recent", "repeat_count", "repeat_hits", "repeat_inserted", "seen", "text_cot",
    "text_count", "text_template", "topics",
)  # fmt: skip
#: Holder.to_row() positions
_V0_HOLDER = (
    "id", "first_ts", "last_ts", "refreshed", "behaviour_ts", "events", "out_tokens",
    "onsets", "onset_first", "org", "snippet", "keys", "tpl", "raw", "fp_bits", "centroid",
)  # fmt: skip
_V0_ARRAYS = {"topics": "f", "hours": "f", "recent": "Q"}


def _inf(value: float | None) -> float:
    return _NEG_INF if value is None else value


def _v0_account_state(values: list[Any]) -> dict[str, Any]:
    if not isinstance(values, list) or len(values) != len(_V0_ACCOUNT_STATE):
        raise ValueError(f"account state must be a list of {len(_V0_ACCOUNT_STATE)} values")
    out = dict(zip(_V0_ACCOUNT_STATE, values, strict=True))
    out["hour_total"] = out.pop("_hour_total")
    for name, typecode in _V0_ARRAYS.items():
        out[name] = le_bytes(array(typecode, out[name]))
    return out


def _v0_tracked(values: list[Any]) -> dict[str, Any]:
    out = dict(zip(_V0_TRACKED, values, strict=True))
    out["state"] = _v0_account_state(out["state"])
    out["reasons"] = [
        {"signal": s, "value": v, "population_percentile": p, "detail": d}
        for s, v, p, d in out["reasons"]
    ]
    out["last_scored_ts"] = _inf(out["last_scored_ts"])
    out["last_pop_ts"] = _inf(out["last_pop_ts"])
    if out["alert"] is not None:
        keys = ("alert_id", "created_ts", "risk", "events", "first_event_ts")
        out["alert"] = dict(zip(keys, out["alert"], strict=True))
    return out


def _v0_account(doc: list[Any]) -> dict[str, Any]:
    return {"kind": "account", "version": 1, "tracked": _v0_tracked(doc)}


def _v0_clock(values: list[float | None] | None, now: float | None = None) -> dict[str, Any]:
    """A version-0 clock: ``[now, five recent times, next slot]``, or (older still) a
    list of sampled event times whose first stands in for the watermark, window restarted."""
    values = list(values or [])
    if len(values) == 7 and values[-1] is not None and float(values[-1]).is_integer():
        return {
            "now": max(_inf(values[0]), _inf(now)),
            "recent": [_inf(v) for v in values[1:6]],
            "next": int(values[-1]),
        }
    first = _inf(values[0]) if values else _NEG_INF
    return {"now": max(first, _inf(now))}


def _v0_account_pipeline(shared: dict[str, Any]) -> dict[str, Any]:
    anomaly, feedback = shared["anomaly"], shared["feedback"]
    n_trees, height, window_size, seed = anomaly["params"]
    bandwidth, strength, max_adjustment, capacity, min_per_class = feedback["params"]
    return {
        "population": shared["population"],
        "anomaly": {
            "n_trees": n_trees,
            "height": height,
            "window_size": window_size,
            "seed": seed,
            "counter": anomaly["counter"],
            "first_window": anomaly["first_window"],
            "trees": anomaly["trees"],
        },
        "anomaly_scores": shared["anomaly_scores"],
        "feedback": {
            "bandwidth": bandwidth,
            "strength": strength,
            "max_adjustment": max_adjustment,
            "capacity": capacity,
            "min_per_class": min_per_class,
            "benign": feedback["benign"],
            "distiller": feedback["distiller"],
            "seen_benign": feedback["seen"][0],
            "seen_distiller": feedback["seen"][1],
            "lr": feedback["lr"],
        },
        "models": shared["models"],
        "stream_start": shared.get("stream_start"),
        "events": shared.get("events", 0),
    }


def _v0_linkage(state: dict[str, Any]) -> dict[str, Any]:
    if state.get("version") != 1:
        raise ValueError(f"unknown linkage snapshot version {state.get('version')!r}")
    holders = []
    for row in state["graph"]["holders"]:
        h = dict(zip(_V0_HOLDER, row, strict=True))
        h["behaviour_ts"] = _inf(h["behaviour_ts"])
        holders.append(h)
    values = {
        key: {"members": members, "recent": recent, "common": common, "last_seen": last_seen}
        for key, members, recent, common, last_seen in state["graph"]["values"]
    }
    if "newcomers" in state:
        newcomers, cohort_due = state["newcomers"], state["cohort_due"]
    else:  # from before cohorts: every account, oldest first (the stage prunes the window)
        newcomers = [h["id"] for h in sorted(holders, key=lambda h: h["first_ts"])]
        cohort_due = bool(newcomers)
    return {
        "next_eval": _inf(state["next_eval"]),
        "next_revalidate": _inf(state["next_revalidate"]),
        "graph": {"holders": holders, "values": values},
        "links": state["links"],
        "book": state["book"],
        "clusters": state["cluster_state"],
        "pending": state["pending"],
        "dirty": state["dirty"],
        "rescore": state["rescore"],
        "realert": state["realert"],
        "changed": state["changed"],
        "behaviour": state["behaviour"],
        "newcomers": newcomers,
        "cohort_due": cohort_due,
    }


def _v0_shared(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "shared", "version": 1}
    if doc.get("format") == _V0_LINKED_FORMAT:
        linkage = msgspec.json.decode(doc["linkage"])
        account = doc.get("account")
        account_doc = msgspec.msgpack.decode(account) if account is not None else None
    elif doc.get("format") == _V0_ACCOUNT_FORMAT:
        linkage, account_doc = None, doc
    else:  # the linkage stage's own JSON snapshot
        linkage, account_doc = doc, None
    clock: dict[str, Any] = {"now": _NEG_INF}
    if account_doc is not None:
        if account_doc.get("format") != _V0_ACCOUNT_FORMAT:
            raise ValueError("the account part is not an account-pipeline snapshot")
        shared = account_doc["shared"]
        out["account"] = _v0_account_pipeline(shared)
        clock = _v0_clock(shared.get("clock"))
        if "accounts" in account_doc:
            out["accounts"] = {a: _v0_tracked(t) for a, t in account_doc["accounts"].items()}
    if linkage is not None:
        out["linkage"] = _v0_linkage(linkage)
        if account_doc is None or clock.get("recent") is None:
            clock = _v0_clock(linkage.get("clock"), linkage.get("now"))
    out["clock"] = clock
    return out


#: version n -> a function from the plain form of version n to that of n + 1
ACCOUNT_MIGRATIONS: dict[int, Callable[[Any], Any]] = {0: _v0_account}
SHARED_MIGRATIONS: dict[int, Callable[[Any], Any]] = {0: _v0_shared}
