"""The linkage stage: events in, clusters of coordinated accounts and cluster alerts out.

Per event the stage only records evidence (a few dict operations: which payment
fingerprint, /24, ASN, user agent, system prompt, sampled template bands and burst
onsets the account shows). Everything costlier runs on an event-time cadence:

- every ``eval_interval_s``: each account that newly shares a value is compared with
  that value's anchors (its earliest and latest holders), links at or above
  ``link_threshold`` merge clusters, and changed clusters are scored and, above
  ``alert_risk`` with at least ``min_alert_size`` members, alerted;
- every ``revalidate_interval_s``: idle accounts and stale memberships expire, every
  kept link is rescored (decay, rarity that moved) and clusters are recomputed from
  the links still strong, which is how a cluster whose ties decayed splits.

Comparing a newcomer with a few anchors instead of every holder keeps the work per
new membership constant: a value held by 300 accounts costs 8 comparisons per
joiner, not 300, and connectivity is all union-find needs.
"""

from __future__ import annotations

import copy
import math
import zlib
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from distillguard.clock import EventClock
from distillguard.detectors.linkage.behaviour import BehaviourBands
from distillguard.detectors.linkage.cadence import (
    RunTable,
    extend,
    gap_bin,
    run_label,
    run_of,
)
from distillguard.detectors.linkage.clusters import ClusterBook
from distillguard.detectors.linkage.cohort import find_cohorts
from distillguard.detectors.linkage.config import LinkageConfig
from distillguard.detectors.linkage.evidence import (
    add_fingerprint,
    centroid_keys,
    fingerprint_keys,
    net_key,
    onset_key,
    template_keys,
    text_key,
)
from distillguard.detectors.linkage.fleet import CoActivityFleets
from distillguard.detectors.linkage.graph import EvidenceGraph, Holder
from distillguard.detectors.linkage.implicated import implicated
from distillguard.detectors.linkage.phase import PhaseClocks
from distillguard.detectors.linkage.provenance import ItemKeyer, ProvenanceSketch
from distillguard.detectors.linkage.sampling import (
    ASN,
    IP,
    ORG,
    PAYMENT,
    PROVENANCE,
    SYSTEM_PROMPT,
    TEMPLATE,
    USER_AGENT,
    request_sampler,
)
from distillguard.detectors.linkage.scoring import cluster_risk, evidence_items, reasons
from distillguard.detectors.linkage.synchrony import CampaignWindows
from distillguard.detectors.state import ClusterState as _ClusterState
from distillguard.detectors.state import LinkageState, SamplerState, decode_shared, encode_shared
from distillguard.events import RequestEvent
from distillguard.records import Alert, Cluster, Evidence, Reason, iso, level_for

NO_ALERTS: tuple[Alert, ...] = ()
#: onsets further ahead of the watermark than this do not reach campaign windows and
#: co-activity fleets (their account's own evidence still counts them)
_ONSET_LEAD_S = 3600.0
_SNIPPET_CHARS = 240
_MEMBER_RISK_SAMPLE = 64
_RISK_CHANGE = 0.02


class LinkageStage:
    """Clusters accounts that share rare evidence, and alerts on coordinated clusters.

    Parameters
    ----------
    config
        Parameters, ``detectors.linkage`` of the settings; when omitted, the in-code
        defaults (equal to the shipped ones). The stage reads no file.
    member_risk
        Optional ``account_id -> risk`` of the account detectors, so a cluster with a
        flagged member scores higher. Called only for members of changed clusters.
    member_extraction
        Optional ``account_id -> extraction score`` (log-odds of the account's own
        extraction signals, ``LinkedPipeline`` derives it from the account detectors).
        With it, a cluster alert means coordinated *and* extracting: a cluster is
        alerted, and its members inherit its risk, only while at least
        ``extraction_share_min`` of its (sampled) members score at least
        ``member_extraction_min``; otherwise it stays in the clusters view with its
        risk capped at ``coordination_risk_cap``. Accounts of one org are linked by
        what an org shares only when both score at least ``org_extraction_min``.
        Without it (the stage alone has no behaviour to judge) every cluster counts as
        extracting, as before.
    member_setting
        Optional ``account_id -> log-odds of its client settings`` (a large
        ``max_tokens``; ``shared_setting_weights``), added to a sampled member's
        extraction score only while ``shared_setting_share`` of the sample has them:
        one operator's configuration, not people's own apps.

    Examples
    --------
    Twelve accounts sharing a card and a proxy /24 form one alerted cluster; two
    strangers on the same popular SDK do not:

    >>> from distillguard.events import RequestEvent
    >>> stage = LinkageStage(LinkageConfig())
    >>> def ev(i, acct, **kw):
    ...     return RequestEvent(event_id=f"e{i}", ts=1_000.0 + i, account_id=acct, model="m",
    ...                         input_tokens=10, output_tokens=50, status=200, **kw)
    >>> alerts = []
    >>> for i in range(12):
    ...     alerts += stage.process(ev(i, f"hydra{i}", payment_fingerprint="card-9",
    ...                                ip=f"198.51.100.{i + 1}", user_agent="aiohttp/3.9"))
    >>> for i in range(2):
    ...     alerts += stage.process(ev(20 + i, f"user{i}", ip=f"192.0.{i}.5",
    ...                                user_agent="openai-python/1.54.3"))
    >>> for i in range(3):  # event time (a median of recent events) moves past the cadence
    ...     alerts += stage.process(ev(200 + i, "user0"))
    >>> [(a.subject_id, len(a.members), a.level) for a in alerts]
    [('clu_1', 12, 'high')]
    >>> stage.cluster_of("hydra3"), stage.cluster_of("user0"), stage.cluster_risk("hydra3") > 0.7
    ('clu_1', None, True)
    >>> [e.kind for e in alerts[0].evidence][:2]
    ['payment', 'net']
    """

    def __init__(
        self,
        config: LinkageConfig | None = None,
        member_risk: Callable[[str], float] | None = None,
        clock: EventClock | None = None,
        cluster_prefix: str = "clu_",
        member_extraction: Callable[[str], float] | None = None,
        member_setting: Callable[[str], float] | None = None,
    ) -> None:
        self.config = config if config is not None else LinkageConfig()
        #: the stage observes event times only into a clock it created
        self._observes = clock is None
        self.clock = clock if clock is not None else EventClock()
        self.member_risk = member_risk
        self.member_extraction = member_extraction
        self.member_setting = member_setting
        self._graph = EvidenceGraph(self.config)
        self.cluster_prefix = cluster_prefix
        self._book = ClusterBook(cluster_prefix)
        self._behaviour = BehaviourBands()
        self._links: dict[tuple[str, str], float] = {}
        self._strong: dict[str, dict[str, float]] = {}
        self._pending: list[tuple[str, str]] = []
        self._clusters: dict[str, _ClusterState] = {}
        #: cluster id -> its ``named`` members as a set (a cache of the state's list)
        self._named: dict[str, set[str]] = {}
        self._dirty: set[str] = set()  # membership changed: score and report
        #: links may have moved: score, report if the risk moved
        self._rescore: set[str] = set()
        #: alerted clusters with members not yet in an alert
        self._realert: set[str] = set()
        self._changed: set[str] = set()
        self._alerts: list[Alert] = []
        #: accounts first seen within ``cohort_window_s``, oldest first (``cohort.py``)
        self._newcomers: deque[str] = deque()
        self._cohort_due = False
        self._sync = CampaignWindows.from_config(self.config)
        self._next_sync_group = -math.inf
        self._fleet = CoActivityFleets.from_config(self.config)
        self._next_fleet_group = -math.inf
        self._phase = PhaseClocks.from_config(self.config)
        self._next_phase_group = -math.inf
        self._next_eval = -math.inf
        self._next_revalidate = -math.inf
        self._sampler = request_sampler(self.config)
        self._edge = self.config.template_edge_tokens
        self._min_hits = self.config.template_min_hits
        self._keyer, self._provenance = _provenance_of(self.config)
        self._cadence_keys = (
            self.config.cadence_max_keys if self.config.kind("cadence").weight > 0 else 0
        )
        self._runs = RunTable(self.config.cadence_table_size)
        self._cadence_daily = self.config.cadence_max_daily

    # -- hot path ------------------------------------------------------------------------

    def process(self, event: RequestEvent) -> tuple[Alert, ...]:
        """Record the evidence ``event`` shows; on the cadence, link, cluster and alert."""
        ts = event.ts  # epoch seconds: EventDecoder is the one place that parses time
        g = self._graph
        h = g.holders.get(event.account_id)
        if h is None:
            h = g.holder(event.account_id, ts)
            self._newcomers.append(h.id)
        if self._observes:
            self.clock.observe(ts)
        pending = self._pending
        aid = h.id
        if h.events == 0 or ts - h.last_ts >= self.config.onset_gap_s:
            key = onset_key(ts, self.config.sync_bucket_s)
            if g.observe(h, key, ts):
                pending.append((aid, key))
            if ts - self.clock.now <= _ONSET_LEAD_S:
                # the time-binned readers close a bin on the first onset of a later one:
                # one account's event stamped days ahead would close everyone's bins
                self._sync.onset(aid, ts)
                self._fleet.onset(aid, ts)
                self._phase.onset(aid, ts)
        if self._cadence_keys and h.events:
            self._read_gap(h, ts - h.last_ts, ts)
        if ts > h.last_ts:
            h.last_ts = ts
        h.events += 1
        h.out_tokens += event.output_tokens
        # what of the request to read: the account's own sequence decides (sampling.py)
        bits = self._sampler.sample(event)
        if bits & _ATTRIBUTES:
            self._read_attributes(h, event, bits, ts)
        if bits & TEMPLATE:
            self._sample_template(h, event, ts)
        elif event.prompt is None and event.prompt_fingerprint is not None:
            # a fingerprint costs ~2 µs to count: every one goes into the centroid
            self._update_centroid(h, event.prompt_fingerprint, ts)
        if bits & PROVENANCE and event.prompt:
            item = self._keyer.key(event.prompt)  # content provenance (provenance.py)
            if item is not None:
                self._provenance.learn_one(aid, item, ts)
        if self.clock.now >= self._next_eval:
            return self._evaluate()
        return NO_ALERTS

    def _read_gap(self, h: Holder, gap: float, ts: float) -> None:
        """Extend the account's run of gaps; a sampled run of four is a key (``cadence.py``)."""
        b = gap_bin(gap)
        busy = self._cadence_daily
        if b < 0 or (h.events > busy and h.events * 86_400.0 > busy * (ts - h.first_ts)):
            # too short, too long, out of order, or a busy backend's: the run starts again
            h.gap_n = 0
            return
        if h.gap_n == 3:
            x = run_of(h.gap_run, b)
            if x >= 0:
                key = run_label(x)
                if key in h.keys or key in self._graph.values:
                    self._hold_run(h, key, ts)
                else:
                    prior = self._runs.meet(x, h.id, ts)
                    if prior is not None and (other := self._graph.holders.get(prior[0])):
                        # a second account shows the run: now it is evidence, held by both
                        self._hold_run(other, key, prior[1])
                        self._hold_run(h, key, ts)
        else:
            h.gap_n += 1
        h.gap_run = extend(h.gap_run, b)

    def _hold_run(self, h: Holder, key: str, ts: float) -> None:
        """Observe a shared run of gaps, forgetting the account's oldest past its bound."""
        keys = h.keys
        if key not in keys and h.gap_keys >= self._cadence_keys:
            oldest = min((k for k in keys if k[0] == "g"), key=keys.__getitem__, default=None)
            if oldest is not None:
                self._graph.forget(h, oldest)
        if self._graph.observe(h, key, ts):
            self._pending.append((h.id, key))

    def _read_attributes(self, h: Holder, event: RequestEvent, bits: int, ts: float) -> None:
        """Observe the attributes the sampler picked: new to the account, or refreshed
        (about once a minute per active account: their keys are made each time). The
        sampler sets a bit only for an attribute the event has."""
        if bits & PAYMENT:
            self._read(h, "p:" + event.payment_fingerprint, ts)  # type: ignore[operator]
        if bits & IP:
            self._read(h, net_key(event.ip), ts, network=True)  # type: ignore[arg-type]
        if bits & ASN:
            self._read(h, f"a:{event.asn}", ts, network=True)
        if bits & USER_AGENT:
            self._read(h, "u:" + event.user_agent, ts)  # type: ignore[operator]
        if bits & SYSTEM_PROMPT:
            self._read(h, text_key("s", event.system_prompt), ts)  # type: ignore[arg-type]
        if bits & ORG and h.org is None:
            h.org = event.org_id

    def _read(self, h: Holder, key: str, ts: float, network: bool = False) -> None:
        if self._graph.observe(h, key, ts):
            self._pending.append((h.id, key))
            if network and ts - h.first_ts <= self.config.cohort_window_s:
                self._cohort_due = True  # a new account newly shares a network

    def _sample_template(self, h: Holder, event: RequestEvent, ts: float) -> None:
        prompt = event.prompt
        if prompt:
            keys = template_keys(prompt, self._edge)
        elif event.prompt_fingerprint:
            keys = fingerprint_keys(event.prompt_fingerprint)
            self._update_centroid(h, event.prompt_fingerprint, ts)
        else:
            return
        # A template is a skeleton seen with *different* contents: the same prompt sent
        # twice (a popular question, a retry) must not count as templating.
        content = (
            zlib.crc32(prompt.encode("utf-8", "replace"))
            if prompt
            else int(event.prompt_fingerprint or "0", 16)
        )
        tpl = h.tpl
        g = self._graph
        for key in keys:
            seen = tpl.get(key)
            if seen is None:
                tpl[key] = [1, content]
                hits = 1
            elif seen[1] != content:
                seen[0] += 1
                seen[1] = content
                hits = seen[0]
            else:
                continue
            if hits >= self._min_hits:
                if g.observe(h, key, ts):
                    self._pending.append((h.id, key))
                if hits == self._min_hits and prompt and h.snippet is None:
                    h.snippet = prompt[:_SNIPPET_CHARS]
        while len(tpl) > self.config.max_template_candidates:
            del tpl[next(iter(tpl))]

    def _update_centroid(self, h: Holder, fingerprint: str, ts: float) -> None:
        bits = h.fp_bits
        if bits is None:
            bits = h.fp_bits = [0] * 65
        add_fingerprint(bits, fingerprint)
        n, cfg = bits[0], self.config
        if n < cfg.centroid_min or (n - cfg.centroid_min) % cfg.centroid_every:
            return
        h.centroid, new = centroid_keys(bits)
        g = self._graph
        for key in [k for k in h.keys if k[0] == "c" and k not in new]:
            g.forget(h, key)
        for key in new:
            if g.observe(h, key, ts):
                self._pending.append((h.id, key))

    def wants_features(self, account_id: str, ts: float) -> bool:
        """Whether :meth:`observe_features` would use a feature dict for this account now."""
        h = self._graph.holders.get(account_id)
        return h is not None and ts - h.behaviour_ts >= self.config.behaviour_interval_s

    def observe_features(self, account_id: str, features: dict[str, float], ts: float) -> None:
        """Optional hook: the account detectors' feature dict, as behaviour evidence.

        Throttled per account (``behaviour_interval_s``); unknown accounts are ignored.
        """
        h = self._graph.holders.get(account_id)
        if h is None or ts - h.behaviour_ts < self.config.behaviour_interval_s:
            return
        h.behaviour_ts = ts
        new = self._behaviour.keys(features)
        g = self._graph
        for key in [k for k in h.keys if k[0] == "b" and k not in new]:
            g.forget(h, key)
        for key in new:
            if g.observe(h, key, ts):
                self._pending.append((account_id, key))

    # -- cadence -------------------------------------------------------------------------

    def _evaluate(self) -> tuple[Alert, ...]:
        now = self.clock.now
        self._next_eval = now + self.config.eval_interval_s
        if now >= self._next_revalidate:
            self._revalidate(now)
        if self._cohort_due:
            self._find_cohorts(now)
        if now >= self._next_sync_group:
            self._group_synchronised(now)
        if now >= self._next_fleet_group:
            self._group_fleets(now)
        if now >= self._next_phase_group:
            self._group_phase_locked(now)
        self._link_pending(now)
        retired, self._book.retired = self._book.retired, []
        for cid in retired:
            self._retire(cid)
        return self._score_dirty(now)

    def _find_cohorts(self, now: float) -> None:
        """Give each cohort of co-starting accounts (``cohort.py``) a shared ``k:`` key.

        Runs only when an account first seen within ``cohort_window_s`` newly shares a
        network or an ASN (what makes a cohort form or grow; a value that turns rare as
        the population grows is picked up at the next such event), over those accounts.
        A cohort keeps its key as it grows, so newcomers join it.
        """
        self._cohort_due = False
        cfg = self.config
        holders = self._graph.holders
        recent = self._newcomers
        while recent and (
            (h := holders.get(recent[0])) is None or now - h.first_ts > cfg.cohort_window_s
        ):
            recent.popleft()
        if len(recent) < cfg.cohort_min_size:
            return
        newcomers = [h for aid in recent if (h := holders.get(aid)) is not None]
        g = self._graph
        values = g.values
        # Judged against the accounts actually seen, not the rarity floor: in a stage's
        # first minutes a cloud ASN held by 20 of 30 accounts is infrastructure.
        most = max(2, int(cfg.cohort_max_share * len(holders)))

        def is_rare(key: str) -> bool:
            value = values.get(key)
            return value is not None and len(value.members) <= most

        for group in find_cohorts(newcomers, cfg.cohort_min_size, cfg.cohort_min_networks, is_rare):
            # A cohort seen before keeps its key as the window slides (the key most of
            # its members already hold); a new one is named after its oldest member.
            held = Counter(k for h in group for k in h.keys if k[0] == "k")
            key = held.most_common(1)[0][0] if held else "k:" + group[0].id
            for h in group:
                if key not in h.keys and g.observe(h, key, now):
                    self._pending.append((h.id, key))

    def _group_synchronised(self, now: float) -> None:
        """Give each group of synchronised accounts (``synchrony.py``) a shared ``z:`` key.

        Like a cohort, a group keeps the key most of its members already hold as it
        grows; a new group is named after its first member. Members are re-sighted on
        every run, so the key decays only once an account stops hitting the windows.
        """
        cfg = self.config
        self._next_sync_group = now + cfg.campaign_group_interval_s
        holders = self._graph.holders
        for group in self._sync.groups(now, cfg.campaign_min_size):
            members = [h for a in group if (h := holders.get(a)) is not None]
            if len(members) < cfg.campaign_min_size:
                continue
            self._key_group(members, "z", "z:" + members[0].id, now)

    def _group_fleets(self, now: float) -> None:
        """Give each dense co-activity group (``fleet.py``) a shared ``f:`` key.

        As for campaign-window groups, a group keeps the key most of its members
        already hold, and members are re-sighted at every extraction.
        """
        cfg = self.config
        self._next_fleet_group = now + cfg.fleet_interval_s
        holders = self._graph.holders
        for group in self._fleet.groups(now, self._member_gate()):
            members = [h for a in group if (h := holders.get(a)) is not None]
            if len(members) < cfg.fleet_min_size:
                continue
            if self.member_extraction is not None:
                # Only extracting accounts were peeled (a lecture hour or an eval
                # vendor's nightly run is denser than a fleet and would take the slots);
                # the group is still judged whole by the cluster gate's full test, which
                # also counts a setting nearly all members share. Timing is all that
                # ties the group, hence a stricter share than a cluster's
                # (``fleet_extraction_share_min``), and only extracting members are keyed.
                share, _ = self._extracting_share(sorted(group)[:_MEMBER_RISK_SAMPLE])
                if share < max(cfg.extraction_share_min, cfg.fleet_extraction_share_min):
                    continue
                members = [h for h in members if self._extracts(h.id)]
            self._key_group(members, "f", "f:" + members[0].id, now)

    def _group_phase_locked(self, now: float) -> None:
        """Give the accounts locked to each controller's clock (``phase.py``) a ``q:`` key.

        Only accounts that pass the extraction gate are locked (a customer's scheduler
        keeps a phase too); as for the other group keys, a group keeps the key most of
        its members already hold, and members are re-sighted at every search.
        """
        cfg = self.config
        self._next_phase_group = now + cfg.phase_interval_s
        holders = self._graph.holders
        for clock in self._phase.clocks(now, self._member_gate()):
            members = [h for a in clock.members if (h := holders.get(a)) is not None]
            if len(members) < cfg.phase_min_size:
                continue
            # named for what an analyst can check: the period, and who first kept it
            self._key_group(members, "q", f"q:{clock.period_s:.1f}s:{members[0].id}", now)

    def _extracts(self, account_id: str) -> bool:
        """The member test of the extraction gate (``member_extraction_min``)."""
        assert self.member_extraction is not None
        return self.member_extraction(account_id) >= self.config.member_extraction_min

    def _member_gate(self) -> Callable[[str], bool] | None:
        """The member test for the group finders; None (everyone) in a stage alone."""
        return None if self.member_extraction is None else self._extracts

    def _key_group(self, members: list[Holder], prefix: str, fresh: str, now: float) -> None:
        """Give a group judged as one (campaign windows, fleets, clocks) one key.

        A group keeps the key most of its members already hold, so it keeps one name
        (and one cluster) as it grows and is re-found; ``fresh`` names a new one.
        Members are re-sighted, so the key decays only once an account leaves.
        """
        held = Counter(k for h in members for k in h.keys if k[0] == prefix)
        key = held.most_common(1)[0][0] if held else fresh
        g = self._graph
        for h in members:
            if g.observe(h, key, now):
                self._pending.append((h.id, key))

    def _retire(self, cid: str) -> None:
        """A cluster id that no longer exists (dissolved, or merged into an older one)."""
        self._clusters.pop(cid, None)
        self._named.pop(cid, None)
        self._dirty.discard(cid)
        self._rescore.discard(cid)
        self._realert.discard(cid)
        self._changed.add(cid)

    def _link_pending(self, now: float) -> None:
        pending, self._pending = self._pending, []
        g = self._graph
        holders = g.holders
        done: set[tuple[str, str]] = set()
        for aid, key in pending:
            h = holders.get(aid)
            if h is None or key not in h.keys:
                continue
            for other in g.anchors(key, aid):
                pair = (aid, other) if aid < other else (other, aid)
                if pair in done:
                    continue
                done.add(pair)
                o = holders.get(other)
                if o is not None:
                    self._set_link(pair, self._link_weight(h, o, now))

    def _set_link(self, pair: tuple[str, str], weight: float) -> None:
        cfg = self.config
        old = self._links.get(pair, 0.0)
        if weight >= cfg.store_threshold:
            self._links[pair] = weight
        else:
            self._links.pop(pair, None)
        a, b = pair
        if weight >= cfg.link_threshold:
            self._strong.setdefault(a, {})[b] = weight
            self._strong.setdefault(b, {})[a] = weight
            cid = self._book.union(a, b)
            if cid is not None:
                self._dirty.add(cid)
        elif old >= cfg.link_threshold:
            self._strong.get(a, {}).pop(b, None)
            self._strong.get(b, {}).pop(a, None)

    def _link_weight(self, a: Holder, b: Holder, now: float) -> float:
        """The pair's link; two accounts of one org are judged by their behaviour.

        What an org's members naturally share counts between them only when both
        extract (an org whose members harvest is still one hydra); the extraction
        scores are asked only for same-org pairs, on the cadence.
        """
        judged = False
        if a.org is not None and a.org == b.org and self.member_extraction is not None:
            least = self.config.org_extraction_min
            judged = self.member_extraction(a.id) >= least and self.member_extraction(b.id) >= least
        return self._graph.link_weight(a, b, now, judged)

    def _revalidate(self, now: float) -> None:
        cfg = self.config
        self._next_revalidate = now + cfg.revalidate_interval_s
        g = self._graph
        idle = [aid for aid, h in g.holders.items() if now - h.last_ts > cfg.account_ttl_s]
        for aid in idle:
            g.drop_holder(aid)
            self._provenance.forget(aid)
            self._sync.forget(aid)
            self._fleet.forget(aid)
            self._phase.forget(aid)
        self._sampler.sweep(now, self.clock.max_behind_s)
        g.set_population(len(g.holders))
        g.expire(now)
        self._runs.expire(now - g.max_age["g"])
        holders = g.holders
        links: dict[tuple[str, str], float] = {}
        strong: dict[str, dict[str, float]] = {}
        edges: list[tuple[str, str]] = []
        for pair in self._links:
            ha, hb = holders.get(pair[0]), holders.get(pair[1])
            if ha is None or hb is None:
                continue
            w = self._link_weight(ha, hb, now)
            if w >= cfg.store_threshold:
                links[pair] = w
                if w >= cfg.link_threshold:
                    strong.setdefault(pair[0], {})[pair[1]] = w
                    strong.setdefault(pair[1], {})[pair[0]] = w
                    edges.append(pair)
        self._links = links
        self._strong = strong
        changed, dissolved = self._book.rebuild(edges)
        self._dirty |= changed
        # Links strengthen without membership changing (more shared templates, more
        # co-onsets): every cluster is rescored here, and reported if its risk moved.
        self._rescore |= set(self._book.members) - changed
        for cid in dissolved:
            self._retire(cid)

    def _score_dirty(self, now: float) -> tuple[Alert, ...]:
        if not self._dirty and not self._rescore and not self._realert:
            return NO_ALERTS
        cfg = self.config
        dirty, self._dirty = self._dirty, set()
        rescore, self._rescore = self._rescore - dirty, set()
        alerts: list[Alert] = []
        for cid in sorted(dirty | rescore, key=self._book.order):
            members = self._book.members.get(cid)
            if not members:
                continue
            st = self._clusters.get(cid)
            if st is None:
                st = self._clusters[cid] = _ClusterState()
            old_risk = st.risk
            st.mean_link = self._mean_link(members)
            # Bounded: a cluster of hundreds is judged from a fixed sample of its members.
            sample = sorted(members)[:_MEMBER_RISK_SAMPLE]
            st.member_risk = self._member_risk(sample)
            st.extracting_share, st.settings_shared = self._extracting_share(sample)
            self._judge_provenance(st, sample, now)
            events = sum(h.events for a in members if (h := self._graph.holders.get(a)))
            st.risk = cluster_risk(
                st.mean_link, cfg.link_threshold, len(members), events, st.member_risk
            )
            extracting = self._extracting(st)
            if not extracting:
                # coordinated but behaving like customers: reported, never alerted
                st.risk = min(st.risk, cfg.coordination_risk_cap)
            if cid in dirty or abs(st.risk - old_risk) >= _RISK_CHANGE:
                self._changed.add(cid)
            named = self._implicated(members, st) if extracting else set()
            st.named = sorted(named)
            self._named[cid] = named
            if extracting and st.risk >= cfg.alert_risk and len(named) >= cfg.min_alert_size:
                self._maybe_alert(cid, members, named, st, now, alerts)
        for cid in sorted(self._realert - dirty - rescore, key=self._book.order):
            members = self._book.members.get(cid)
            st = self._clusters.get(cid)
            if members and st is not None and self._inherits(st):
                self._maybe_alert(cid, members, self._named_set(cid, st), st, now, alerts)
            else:
                self._realert.discard(cid)
        self._alerts.extend(alerts)
        return tuple(alerts)

    def _maybe_alert(
        self,
        cid: str,
        members: set[str],
        named: set[str],
        st: _ClusterState,
        now: float,
        out: list[Alert],
    ) -> None:
        """Raise the cluster's alert, or update it when its named members changed or its
        level rose (``named``: the members it implicates, :meth:`_implicated`).

        Updates are spaced by ``realert_interval_s`` so a cluster growing by a member a
        minute does not re-send its member list every minute; a member that joined
        meanwhile waits in ``_realert`` for the next allowed update.
        """
        level = level_for(st.risk)
        new_members = len(named) != len(st.alerted_members) or not named.issuperset(
            st.alerted_members
        )
        if st.alerted and not new_members and _LEVEL_ORDER[level] <= _LEVEL_ORDER[st.alert_level]:
            self._realert.discard(cid)
            return
        if st.alerted and now - (st.last_alert_ts or now) < self.config.realert_interval_s:
            self._realert.add(cid)
            return
        if not st.alerted:
            st.alerted = True
            st.first_alert_ts = now
        st.last_alert_ts = now
        st.alerted_members = sorted(named)
        st.alert_level = level
        self._realert.discard(cid)
        out.append(self._alert(cid, members, named, st, now))

    def _mean_link(self, members: set[str]) -> float:
        # fsum: exact whatever order the sets iterate in, so a restored stage (or another
        # process's hash seed) scores a cluster to the same bit
        weights = [
            w for a in members for b, w in self._strong.get(a, {}).items() if a < b and b in members
        ]
        return math.fsum(weights) / len(weights) if weights else self.config.link_threshold

    def _member_risk(self, sample: list[str]) -> float:
        if self.member_risk is None:
            return 0.0
        top = sorted((self.member_risk(a) for a in sample), reverse=True)[:3]
        return sum(top) / len(top) if top else 0.0

    def _extracting_share(self, sample: list[str]) -> tuple[float, bool]:
        """Share of the sampled members whose own behaviour looks like extraction, and
        whether their client settings counted in it.

        A client setting counts only when nearly every member has it: a course's
        students each chose their own app, a campaign's accounts run one configuration.
        """
        if self.member_extraction is None or not sample:
            return 1.0, False
        least = self.config.member_extraction_min
        scores = [self.member_extraction(a) for a in sample]
        shared = False
        if self.member_setting is not None:
            settings = [self.member_setting(a) for a in sample]
            if sum(1 for s in settings if s > 0) >= self.config.shared_setting_share * len(sample):
                scores = [x + s for x, s in zip(scores, settings, strict=True)]
                shared = True
        return sum(1 for x in scores if x >= least) / len(sample), shared

    def _implicated(self, members: set[str], st: _ClusterState) -> set[str]:
        """The members an extracting cluster names (:func:`.implicated.implicated`); every
        member of a cluster its content sweep convicted, or in a stage alone."""
        if self.member_extraction is None or st.provenance >= self.config.provenance_score_min:
            return set(members)
        least = self.config.member_extraction_min
        extraction, setting = self.member_extraction, self.member_setting
        if st.settings_shared and setting is not None:
            passes = {a for a in members if extraction(a) + setting(a) >= least}
        else:
            passes = {a for a in members if extraction(a) >= least}
        return implicated(
            members, passes, self._graph.holders, self._strong, self.config.extraction_share_min
        )

    def _named_set(self, cid: str, st: _ClusterState) -> set[str]:
        named = self._named.get(cid)
        if named is None:  # restored: rebuilt from the state once
            if st.named is None:  # an older checkpoint, whose alerts named every member:
                # so they stay until the cluster's next scoring applies today's rule
                st.named = sorted(self._book.members.get(cid, ()))
            named = self._named[cid] = set(st.named)
        return named

    def _judge_provenance(self, st: _ClusterState, sample: list[str], now: float) -> None:
        """Content provenance of a cluster the members' own behaviour does not convict:
        one dispatcher sweeping one dataset is extraction however each member looks.

        Asked only then, for the same bounded member sample, and at most every
        ``provenance_interval_s`` per cluster (a growing course is rescored every
        minute; ~10 ms per judgement of 64 members), so its cost follows the
        coordinated-but-not-extracting clusters, not every rescore.
        """
        cfg = self.config
        if (
            self.member_extraction is None
            or not cfg.provenance_gate
            or st.extracting_share >= cfg.extraction_share_min
        ):
            st.provenance, st.provenance_detail = 0.0, ""
            return
        if now - st.provenance_ts < cfg.provenance_interval_s:
            return
        found = self._provenance.group_score(sample)
        st.provenance, st.provenance_detail = found.score, found.explanation()
        st.provenance_ts = now

    def _extracting(self, st: _ClusterState) -> bool:
        cfg = self.config
        return (
            st.extracting_share >= cfg.extraction_share_min
            or st.provenance >= cfg.provenance_score_min
        )

    def _inherits(self, st: _ClusterState | None) -> bool:
        """Members inherit a cluster's risk while it is alerted and still extracting."""
        return st is not None and st.alerted and self._extracting(st)

    def _evidence(self, members: set[str]) -> list[Evidence]:
        cfg = self.config
        items = evidence_items(
            self._graph.shared(sorted(members)), cfg.evidence_items, cfg.evidence_accounts
        )
        holders = self._graph.holders
        for item in items:
            # A band hash means nothing to an analyst; one holder's templated prompt does.
            if item.kind == "template":
                snippet = next(
                    (h.snippet for a in item.accounts if (h := holders.get(a)) and h.snippet),
                    None,
                )
                if snippet:
                    item.value = f"{item.value}, e.g. {snippet[:160]!r}"
        return items

    def _alert(
        self, cid: str, members: set[str], named: set[str], st: _ClusterState, now: float
    ) -> Alert:
        st.evidence = self._evidence(members)
        if st.provenance >= self.config.provenance_score_min:
            # what convicted the cluster, in words an analyst can check
            st.evidence.append(
                Evidence(
                    kind="provenance",
                    value=st.provenance_detail,
                    weight=round(st.provenance, 2),
                    accounts=sorted(members)[: self.config.evidence_accounts],
                )
            )
        holders = [h for a in sorted(members) if (h := self._graph.holders.get(a))]
        first = min((h.first_ts for h in holders), default=now)
        last = max((h.last_ts for h in holders), default=now)
        samples = [h.snippet for h in holders if h.snippet][:3]
        why = reasons(len(members), st.mean_link, st.evidence, st.member_risk)
        if self.member_extraction is not None:
            why.append(Reason(signal="members_extracting", value=round(st.extracting_share, 4)))
        if len(named) < len(members):
            spared = sorted(members - named)
            shown = ", ".join(spared[: self.config.evidence_accounts])
            why.append(
                Reason(
                    signal="members_not_named",
                    value=float(len(spared)),
                    detail=f"linked, but their own behaviour does not look like extraction: "
                    f"{shown}{', ...' if len(spared) > self.config.evidence_accounts else ''}",
                )
            )
        if st.provenance >= self.config.provenance_score_min:
            why.append(
                Reason(
                    signal="content_sweep",
                    value=round(st.provenance, 2),
                    detail=st.provenance_detail,
                )
            )
        return Alert(
            alert_id=f"alert_{cid}",
            subject_type="cluster",
            subject_id=cid,
            risk=round(st.risk, 4),
            level=level_for(st.risk),
            reasons=why,
            created_at=iso(st.first_alert_ts if st.first_alert_ts is not None else now),
            updated_at=iso(now),
            first_event_ts=iso(first),
            last_event_ts=iso(last),
            cluster_id=cid,
            members=sorted(named),
            evidence=st.evidence,
            sample_prompts=samples,
        )

    # -- queries -------------------------------------------------------------------------

    def cluster_of(self, account_id: str) -> str | None:
        """The cluster the account belongs to (alerted or not), or None."""
        return self._book.cluster_of.get(account_id)

    def cluster_risk(self, account_id: str) -> float:
        """The risk the account inherits from an *alerted*, extracting cluster that
        implicates it (else 0)."""
        st = self._implicating(account_id)
        return st.risk if st is not None else 0.0

    def _implicating(self, account_id: str) -> _ClusterState | None:
        cid = self._book.cluster_of.get(account_id)
        st = self._clusters.get(cid) if cid is not None else None
        if cid is None or st is None or not self._inherits(st):
            return None
        return st if account_id in self._named_set(cid, st) else None

    def cluster_reason(self, account_id: str) -> Reason | None:
        """The ``cluster_membership`` reason for an account an alerted cluster implicates."""
        cid = self._book.cluster_of.get(account_id)
        st = self._implicating(account_id)
        if cid is None or st is None:
            return None
        kinds = sorted({e.kind for e in st.evidence})
        size = len(self._book.members.get(cid, ()))
        return Reason(
            signal="cluster_membership",
            value=round(st.risk, 4),
            detail=f"{cid}: {size} accounts sharing {', '.join(kinds) or 'evidence'}",
        )

    @property
    def now(self) -> float | None:
        """The latest event time seen (None before the first event)."""
        return _finite(self.clock.now)

    def members(self, cluster_id: str) -> list[str]:
        return sorted(self._book.members.get(cluster_id, ()))

    def candidate_links(self) -> dict[tuple[str, str], float]:
        """Every link kept (at or above ``store_threshold``), weights as last scored;
        live: read it, do not keep it (``labels.py`` walks it on its cadence)."""
        return self._links

    def drain_alerts(self) -> list[Alert]:
        """Cluster alerts raised or updated since the last call."""
        out, self._alerts = self._alerts, []
        return out

    def drain_clusters(self) -> list[Cluster]:
        """Clusters changed since the last call; a dissolved cluster comes with no members."""
        changed, self._changed = self._changed, set()
        out = []
        now = iso(self.clock.now) if math.isfinite(self.clock.now) else None
        for cid in sorted(changed, key=self._book.order):
            members = self._book.members.get(cid)
            st = self._clusters.get(cid)
            if not members or st is None:
                out.append(
                    Cluster(cluster_id=cid, members=[], risk=0.0, level="low", updated_at=now)
                )
                continue
            evidence = st.evidence if st.alerted else self._evidence(members)
            out.append(
                Cluster(
                    cluster_id=cid,
                    members=sorted(members),
                    risk=round(st.risk, 4),
                    level=level_for(st.risk),
                    evidence=evidence,
                    first_alert_ts=iso(st.first_alert_ts)
                    if st.first_alert_ts is not None
                    else None,
                    updated_at=now,
                )
            )
        return out

    def holder_events(self) -> int:
        """Events recorded over every account the graph holds (each event counts once)."""
        return sum(h.events for h in self._graph.holders.values())

    def stats(self) -> dict[str, int]:
        """Sizes of the state, for benchmarks and the worker's stats line."""
        return {
            "accounts": len(self._graph.holders),
            "values": len(self._graph.values),
            "links": len(self._links),
            "strong_links": sum(len(v) for v in self._strong.values()) // 2,
            "clusters": len(self._book.members),
            "alerted_clusters": sum(1 for s in self._clusters.values() if s.alerted),
        }

    # -- state -----------------------------------------------------------------------------

    def to_state(self) -> LinkageState:
        """Everything the stage learnt but the clock (its owner saves that once).

        The Struct shares containers with the live stage: encode it before the next
        event. Sets are saved sorted, so the same state always gives the same bytes.
        """
        return LinkageState(
            next_eval=self._next_eval,
            next_revalidate=self._next_revalidate,
            graph=self._graph.to_state(),
            links=[(a, b, w) for (a, b), w in self._links.items()],
            book=self._book.to_state(),
            clusters=self._clusters,
            pending=self._pending,
            dirty=sorted(self._dirty),
            rescore=sorted(self._rescore),
            realert=sorted(self._realert),
            changed=sorted(self._changed),
            behaviour=self._behaviour.state(),
            newcomers=list(self._newcomers),
            cohort_due=self._cohort_due,
            provenance=self._provenance.to_state(self._keyer),
            synchrony=self._sync.to_state(),
            next_sync_group=self._next_sync_group,
            fleet=self._fleet.to_state(),
            next_fleet_group=self._next_fleet_group,
            phase=self._phase.to_state(),
            next_phase_group=self._next_phase_group,
            sampler=self._sampler.to_state(),
            runs=self._runs.to_state(),
        )

    def restore_state(self, state: LinkageState) -> None:
        """Replace the state with a :meth:`to_state`; ValueError (nothing changed) if bad."""
        graph = EvidenceGraph.from_state(self.config, state.graph)
        book = ClusterBook.from_state(state.book, self._book.prefix)
        links = {(a, b): w for a, b, w in state.links}
        behaviour = BehaviourBands()
        behaviour.load(state.behaviour)
        keyer, sketch = _provenance_of(self.config)
        if state.provenance is not None:  # None: a checkpoint from before it existed
            sketch.load(state.provenance, keyer)
        sampler = request_sampler(self.config)
        if state.sampler is not None:
            sampler.load(state.sampler)
        else:  # a checkpoint from before the sampler: the holders' counts
            sampler.load(SamplerState(entries={a: _entry_of(h) for a, h in graph.holders.items()}))
        self._keyer, self._provenance, self._sampler = keyer, sketch, sampler
        self._runs = RunTable(self.config.cadence_table_size)
        self._runs.load(state.runs)
        self._graph, self._book, self._links = graph, book, links
        self._clusters = {cid: copy.copy(st) for cid, st in state.clusters.items()}
        self._named = {}
        self._pending = list(state.pending)
        self._dirty, self._rescore = set(state.dirty), set(state.rescore)
        self._realert, self._changed = set(state.realert), set(state.changed)
        self._next_eval, self._next_revalidate = state.next_eval, state.next_revalidate
        self._behaviour = behaviour
        self._newcomers, self._cohort_due = deque(state.newcomers), state.cohort_due
        sync = CampaignWindows.from_config(self.config)
        sync.load(state.synchrony)
        self._sync, self._next_sync_group = sync, state.next_sync_group
        fleet = CoActivityFleets.from_config(self.config)
        fleet.load(state.fleet)
        self._fleet, self._next_fleet_group = fleet, state.next_fleet_group
        phase = PhaseClocks.from_config(self.config)
        phase.load(state.phase)
        self._phase, self._next_phase_group = phase, state.next_phase_group
        threshold = self.config.link_threshold
        self._strong = {}
        for (a, b), w in links.items():
            if w >= threshold:
                self._strong.setdefault(a, {})[b] = w
                self._strong.setdefault(b, {})[a] = w

    def snapshot(self) -> bytes:
        """The stage and its clock as a shared checkpoint (``detectors/state.py``)."""
        return encode_shared(clock=self.clock.to_state(), linkage=self.to_state())

    def restore(self, data: bytes) -> None:
        """Replace the state with a :meth:`snapshot`; a bad one raises ValueError, no change."""
        checkpoint = decode_shared(data)
        if checkpoint.linkage is None:
            raise ValueError("the checkpoint holds no linkage state")
        self.restore_state(checkpoint.linkage)
        self.clock.restore(checkpoint.clock)


_LEVEL_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def _provenance_of(cfg: LinkageConfig) -> tuple[ItemKeyer, ProvenanceSketch]:
    keyer = ItemKeyer(cfg.provenance_boilerplate_min)
    sketch = ProvenanceSketch(
        cfg.provenance_keys_per_account,
        windows_s=cfg.provenance_windows_s,
        min_expected=cfg.provenance_min_expected,
        max_ratio=cfg.provenance_max_ratio,
    )
    return keyer, sketch


def _entry_of(h: Holder) -> Any:
    """A sampler entry from a holder of a checkpoint written before the sampler."""
    r = h.raw if len(h.raw) == 10 else [None] * 10
    h.raw = []
    return (h.events, h.last_ts, h.refreshed, r[0], r[2], r[4], r[6], r[8], h.org)


_ATTRIBUTES = PAYMENT | IP | ASN | USER_AGENT | SYSTEM_PROMPT | ORG


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
