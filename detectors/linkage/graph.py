"""The evidence graph: who holds which evidence value, how rare it is, how strong a link is.

Accounts and evidence values form a bipartite graph. Two accounts are linked by the
values they both hold; a link's weight adds, kind by kind, each shared value's kind
weight times its *rarity* times its *freshness*:

- rarity is IDF-like, ``log(N / n) / log(N / f)`` for a value held by ``n`` of ``N``
  active accounts (1 up to ``f = rarity_free_holders``, 0 when all hold it); a value held
  by more than the kind's ``max_share`` of the population is dropped outright, so a
  cloud ASN, a university NAT or a popular SDK user agent can never glue a
  mega-cluster together however many accounts it has;
- freshness halves every ``half_life_s`` of event time since the older of the two
  sightings, and a membership unseen for ``expire_half_lives`` half-lives expires;
- each kind's total is capped (sharing five proxy /24s beats two, up to a point), and
  a single shared /24 does not count (cloud tenants and NAT neighbours share one);
- kinds that are not independent are capped together by group (``group_caps``):
  honest colleagues behind one NAT share its /24s *and* its ASN, honest users of one
  product share its template, system prompt *and* user agent; each group alone stays
  below the link threshold, so a link needs two independent groups or a shared card;
- synchronised activity counts by surprise: two accounts with ``a`` and ``b`` burst
  onsets over ``s`` time buckets would share ``a * b / s`` buckets by chance (times
  ``sync_diurnal``, since people start work at similar hours); sharing ``k >= 2`` of
  them has Poisson tail probability ``p``, and the link gains ``-log10 p`` relative to
  ``sync_full_surprise``. Two quiet accounts that both woke up in the same two
  five-minute buckets out of a thousand are synchronised; two busy ones sharing seven
  of thirty onsets over a day are not.

Membership is exact (a dict per value, ordered by arrival so the earliest holders
serve as anchors) and bounded: by ``max_members`` per value, by the drop rule, and
by ``max_keys_per_account`` per account.
"""

from __future__ import annotations

import math
from collections import deque

from distillguard.detectors.linkage.config import KIND_OF_PREFIX, LinkageConfig
from distillguard.detectors.state import GraphState, HolderState, ValueState


def poisson_tail(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam), accurate in the far tail.

    >>> round(poisson_tail(2, 0.05), 6), poisson_tail(0, 3.0)
    (0.001209, 1.0)
    """
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    term = math.exp(-lam)
    if lam >= k:
        cdf = 0.0
        for i in range(k):
            if i:
                term *= lam / i
            cdf += term
        return max(0.0, 1.0 - cdf)
    for i in range(1, k + 1):
        term *= lam / i
    tail = 0.0
    i = k
    while term > tail * 1e-12 and i < k + 200:
        tail += term
        i += 1
        term *= lam / i
    return min(1.0, tail)


def _onset_removed(h: Holder, key: str) -> None:
    """Keep ``onsets`` and ``onset_first`` true when an onset leaves (expired, evicted)."""
    h.onsets -= 1
    if int(key[2:]) <= h.onset_first:
        # the span of remembered onsets shrinks; overstating it would make chance
        # co-onsets look unlikely, i.e. make busy accounts look synchronised
        h.onset_first = min((int(k[2:]) for k in h.keys if k[0] == "y"), default=0)


class Holder:
    """One account's side of the graph: the values it holds and when each was last seen."""

    __slots__ = (
        "behaviour_ts",
        "centroid",
        "events",
        "first_ts",
        "fp_bits",
        "gap_keys",
        "gap_n",
        "gap_run",
        "id",
        "keys",
        "last_ts",
        "onset_first",
        "onsets",
        "org",
        "out_tokens",
        "raw",
        "refreshed",
        "snippet",
        "tpl",
    )

    def __init__(self, account_id: str, ts: float) -> None:
        self.id = account_id
        self.first_ts = ts
        self.last_ts = ts
        self.refreshed = ts  # as ``raw``: read only to migrate an old checkpoint
        self.behaviour_ts = -math.inf
        self.events = 0
        self.out_tokens = 0
        self.keys: dict[str, float] = {}  # evidence key -> last sighting (event time)
        #: template band -> [sightings with distinct content, crc of the last content]
        self.tpl: dict[str, list[int]] = {}
        self.onsets = 0  # sync keys among ``keys``
        self.onset_first = 0  # bucket of the oldest remembered onset
        self.org: str | None = None
        #: empty: which attributes to read is the sampler's (``sampling.py``); a
        #: checkpoint from before it fills the 10 slots it kept (value, key per
        #: attribute), read once to migrate
        self.raw: list[object] = []
        self.snippet: str | None = None
        #: redacted prompts: [fingerprints seen, then count of 1s per bit position]
        self.fp_bits: list[int] | None = None
        self.centroid: int | None = None  # majority bits of the fingerprints
        self.gap_run = 0  # the last three gap bins, packed (cadence.py)
        self.gap_n = 0  # how many of them belong to the current run
        self.gap_keys = 0  # cadence keys among ``keys``

    def to_state(self) -> HolderState:
        """The holder by field name; shares its containers (encode it right away)."""
        return HolderState(
            id=self.id,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            refreshed=self.refreshed,
            behaviour_ts=self.behaviour_ts,
            events=self.events,
            out_tokens=self.out_tokens,
            onsets=self.onsets,
            onset_first=self.onset_first,
            org=self.org,
            snippet=self.snippet,
            keys=self.keys,
            tpl=self.tpl,
            raw=self.raw,  # type: ignore[arg-type]
            fp_bits=self.fp_bits,
            centroid=self.centroid,
            gap_run=self.gap_run,
            gap_n=self.gap_n,
        )

    @classmethod
    def from_state(cls, s: HolderState) -> Holder:
        """A holder with its own copies of ``s``'s containers; ValueError on a bad shape."""
        h = cls(s.id, s.first_ts)
        h.last_ts, h.refreshed, h.behaviour_ts = s.last_ts, s.refreshed, s.behaviour_ts
        h.events, h.out_tokens = s.events, s.out_tokens
        h.onsets, h.onset_first = s.onsets, s.onset_first
        h.org, h.snippet = s.org, s.snippet
        h.keys = dict(s.keys)
        if any(len(v) != 2 for v in s.tpl.values()):
            raise ValueError(f"holder {s.id!r}: template candidates must be [hits, crc]")
        h.tpl = {k: list(v) for k, v in s.tpl.items()}
        if s.raw:
            if len(s.raw) != 10:
                raise ValueError(f"holder {s.id!r}: raw values must be 10 slots")
            h.raw = list(s.raw)
        if s.fp_bits is not None and len(s.fp_bits) != 65:
            raise ValueError(f"holder {s.id!r}: fingerprint bit counts must be 65 values")
        h.fp_bits = None if s.fp_bits is None else list(s.fp_bits)
        h.centroid = s.centroid
        h.gap_run, h.gap_n = s.gap_run, s.gap_n
        h.gap_keys = sum(1 for k in h.keys if k[0] == "g")
        return h


class Value:
    """One evidence value's holders; ``common`` once too many accounts hold it."""

    __slots__ = ("common", "last_seen", "members", "recent")

    def __init__(self, anchors: int) -> None:
        self.members: dict[str, None] = {}
        self.recent: deque[str] = deque(maxlen=max(1, anchors // 2))
        self.common = False
        self.last_seen = 0.0


class EvidenceGraph:
    """Holders, values, and the weight of the link between two holders.

    Examples
    --------
    >>> from distillguard.detectors.linkage.config import LinkageConfig
    >>> g = EvidenceGraph(LinkageConfig())
    >>> a, b = g.holder("a", 0.0), g.holder("b", 0.0)
    >>> for h in (a, b):
    ...     for key in ("p:card-1", "n:203.0.113", "n:198.51.100"):
    ...         _ = g.observe(h, key, 0.0)
    >>> round(g.link_weight(a, b, 0.0), 2)
    2.1
    >>> round(g.link_weight(a, b, 86_400.0), 2)  # a day later, nothing seen since
    1.36
    """

    def __init__(self, config: LinkageConfig) -> None:
        self.config = config
        self.holders: dict[str, Holder] = {}
        self.values: dict[str, Value] = {}
        self.weight: dict[str, float] = {}
        self.cap: dict[str, float] = {}
        self.half_life: dict[str, float] = {}
        self.max_age: dict[str, float] = {}
        for prefix, name in KIND_OF_PREFIX.items():
            params = config.kind(name)
            self.weight[prefix] = params.weight
            self.cap[prefix] = params.cap
            self.half_life[prefix] = params.half_life_s
            self.max_age[prefix] = params.half_life_s * config.expire_half_lives
        self.group_of: dict[str, str] = {
            p: config.kind(name).group or name for p, name in KIND_OF_PREFIX.items()
        }
        #: key prefixes of the evidence one org's members naturally share
        self.org_shared: frozenset[str] = frozenset(
            p for p, g in self.group_of.items() if g in config.org_shared_groups
        )
        self.group_cap: dict[str, float] = {
            g: config.group_caps.get(g, math.inf) for g in set(self.group_of.values())
        }
        self.drop_at: dict[str, int] = {}
        self._log_pop = 0.0
        self._log_norm = 1.0
        self.set_population(0)

    # -- population and rarity -------------------------------------------------------

    def set_population(self, active: int) -> None:
        """Re-derive rarity and drop thresholds for ``active`` accounts."""
        cfg = self.config
        pop = max(active, cfg.rarity_population_floor, 4)
        self._free = max(2, cfg.rarity_free_holders)
        self._log_pop = math.log(pop)
        self._log_norm = math.log(pop / self._free)
        self._rarity: list[float] = []
        self._rarity = [self._compute_rarity(n) for n in range(1024)]
        for prefix, name in KIND_OF_PREFIX.items():
            share = cfg.kind(name).max_share
            self.drop_at[prefix] = min(cfg.max_members, max(cfg.min_common, int(share * pop)))

    def rarity(self, holders: int) -> float:
        """IDF-like weight of a value held by ``holders`` accounts, in [0, 1]."""
        cache = self._rarity
        if holders < len(cache):
            return cache[holders]
        return self._compute_rarity(holders)

    def _compute_rarity(self, holders: int) -> float:
        if holders <= self._free:
            return 1.0
        r = (self._log_pop - math.log(holders)) / self._log_norm
        return r if r > 0.0 else 0.0

    # -- membership --------------------------------------------------------------------

    def holder(self, account_id: str, ts: float) -> Holder:
        h = self.holders.get(account_id)
        if h is None:
            h = self.holders[account_id] = Holder(account_id, ts)
        return h

    def observe(self, h: Holder, key: str, ts: float) -> bool:
        """Record that ``h`` shows ``key`` at ``ts``; True if it is a new shared membership."""
        keys = h.keys
        if key in keys:
            if ts > keys[key]:
                keys[key] = ts
            return False
        value = self.values.get(key)
        if value is None:
            value = self.values[key] = Value(self.config.anchors)
        value.last_seen = ts
        if value.common:
            return False
        members = value.members
        members[h.id] = None
        if len(members) > self.drop_at[key[0]]:
            self._make_common(key, value)
            return False
        keys[key] = ts
        value.recent.append(h.id)
        if key[0] == "g":
            h.gap_keys += 1
        elif key[0] == "y":
            h.onsets += 1
            bucket = int(key[2:])
            if h.onsets == 1 or bucket < h.onset_first:
                h.onset_first = bucket
            if h.onsets > self.config.sync_max_onsets:
                self.forget(h, next(k for k in keys if k[0] == "y"))
        if len(keys) > self.config.max_keys_per_account:
            self.forget(h, min(keys, key=keys.__getitem__))
        return len(members) > 1

    def forget(self, h: Holder, key: str) -> None:
        """Remove one membership (expired, evicted, replaced)."""
        if h.keys.pop(key, None) is None:
            return
        if key[0] == "y":
            _onset_removed(h, key)
        elif key[0] == "g":
            h.gap_keys -= 1
        value = self.values.get(key)
        if value is not None:
            value.members.pop(h.id, None)
            if not value.members and not value.common:
                del self.values[key]

    def _make_common(self, key: str, value: Value) -> None:
        for acct in value.members:
            h = self.holders.get(acct)
            if h is not None and h.keys.pop(key, None) is not None:
                if key[0] == "y":
                    _onset_removed(h, key)
                elif key[0] == "g":
                    h.gap_keys -= 1
        value.members = {}
        value.recent.clear()
        value.common = True

    def drop_holder(self, account_id: str) -> None:
        h = self.holders.pop(account_id, None)
        if h is not None:
            for key in list(h.keys):
                value = self.values.get(key)
                if value is not None:
                    value.members.pop(account_id, None)
                    if not value.members and not value.common:
                        del self.values[key]

    def to_state(self) -> GraphState:
        """Holders and values in their order (anchors are the earliest holders)."""
        return GraphState(
            holders=[h.to_state() for h in self.holders.values()],
            values={
                k: ValueState(
                    members=list(v.members),
                    recent=list(v.recent),
                    common=v.common,
                    last_seen=v.last_seen,
                )
                for k, v in self.values.items()
            },
        )

    @classmethod
    def from_state(cls, config: LinkageConfig, state: GraphState) -> EvidenceGraph:
        g = cls(config)
        for hs in state.holders:
            h = Holder.from_state(hs)
            g.holders[h.id] = h
        for key, vs in state.values.items():
            v = Value(config.anchors)
            v.members = dict.fromkeys(vs.members)
            v.recent.extend(vs.recent)
            v.common, v.last_seen = vs.common, vs.last_seen
            g.values[key] = v
        g.set_population(len(g.holders))
        return g

    def anchors(self, key: str, exclude: str) -> list[str]:
        """The holders a newcomer to ``key`` is compared with: earliest and latest few."""
        value = self.values.get(key)
        if value is None or value.common:
            return []
        half = max(1, self.config.anchors // 2)
        out: list[str] = []
        for acct in value.members:
            if len(out) >= half:
                break
            if acct != exclude:
                out.append(acct)
        for acct in value.recent:
            if acct != exclude and acct not in out and acct in value.members:
                out.append(acct)
        return out

    def expire(self, now: float) -> int:
        """Drop memberships past their kind's age and common values long unseen."""
        dropped = 0
        max_age = self.max_age
        for h in self.holders.values():
            stale = [k for k, ts in h.keys.items() if now - ts > max_age[k[0]]]
            for key in stale:
                self.forget(h, key)
            dropped += len(stale)
        gone = [k for k, v in self.values.items() if v.common and now - v.last_seen > max_age[k[0]]]
        for key in gone:
            del self.values[key]
        # The population may have shrunk: values now above their kind's share go common.
        for key, value in list(self.values.items()):
            if not value.common and len(value.members) > self.drop_at[key[0]]:
                self._make_common(key, value)
        return dropped

    # -- links ---------------------------------------------------------------------------

    def link_weight(self, a: Holder, b: Holder, now: float, org_judged: bool = False) -> float:
        """Rarity-weighted, decayed evidence shared by ``a`` and ``b``.

        Two accounts of one ``org_id`` are one customer: what its members naturally
        share (the ``org_shared_groups``: card, NAT, templates, onboarding cohort) does
        not tie them, unless ``org_judged`` (the stage found both extracting), and even
        then the org's own card does not.
        """
        ka, kb = a.keys, b.keys
        if len(ka) > len(kb):
            ka, kb = kb, ka
        totals: dict[str, float] = {}
        shared_onsets = shared_nets = shared_runs = 0
        same_org = a.org is not None and a.org == b.org
        values = self.values
        rarity = self._rarity
        for key, ta in ka.items():
            tb = kb.get(key)
            if tb is None:
                continue
            p = key[0]
            if p == "y":
                shared_onsets += 1
                continue
            if p == "c":  # centroid bands only find candidates; bits are compared below
                continue
            if same_org and (p == "p" or (not org_judged and p in self.org_shared)):
                continue  # one organisation paying for (hosting, templating) its accounts
            if p == "n":
                shared_nets += 1
            elif p == "g":
                shared_runs += 1
            value = values.get(key)
            if value is None:
                continue
            # the older sighting, but for a run of gaps: shown once, the pair is a fact
            # from its second showing
            age = now - ((ta if ta > tb else tb) if p == "g" else (ta if ta < tb else tb))
            n = len(value.members)
            if p == "k" or p == "z" or p == "q":  # judged against chance as a group
                w = self.weight[p]
            else:
                w = self.weight[p] * (rarity[n] if n < 1024 else self._compute_rarity(n))
            if age > 0:
                w *= 0.5 ** (age / self.half_life[p])
            totals[p] = totals.get(p, 0.0) + w
        if (
            a.centroid is not None
            and b.centroid is not None
            and not (same_org and not org_judged and "c" in self.org_shared)
        ):
            cfg = self.config
            agree = 64 - (a.centroid ^ b.centroid).bit_count()
            if agree > cfg.centroid_agree_from:
                frac = (agree - cfg.centroid_agree_from) / (
                    cfg.centroid_agree_full - cfg.centroid_agree_from
                )
                totals["c"] = self.weight["c"] * (frac if frac < 1.0 else 1.0)
        if shared_nets and shared_nets < self.config.net_min_shared:
            # One common /24 is what cloud tenants and NAT neighbours have; a pool of
            # addresses spread over several /24s used by both accounts is not.
            del totals["n"]
        if shared_runs and shared_runs < self.config.cadence_min_shared:
            # two or fewer runs of gaps in common is within what chance and scripted
            # backends give (cadence.py); a replayed recording shares dozens
            totals.pop("g", None)
        groups: dict[str, float] = {}
        group_of = self.group_of
        for p, w in totals.items():
            cap = self.cap[p]
            g = group_of[p]
            groups[g] = groups.get(g, 0.0) + (w if w < cap else cap)
        total = 0.0
        for g, w in groups.items():
            cap = self.group_cap[g]
            total += w if w < cap else cap
        if shared_onsets >= self.config.sync_min_shared:
            total += self.sync_weight(a, b, shared_onsets, now)
        return total

    def sync_weight(self, a: Holder, b: Holder, shared: int, now: float) -> float:
        """Link weight of ``shared`` common onset buckets, by how unlikely chance makes it."""
        cfg = self.config
        bucket = int(now // cfg.sync_bucket_s)
        span = max(1, bucket - max(a.onset_first, b.onset_first) + 1)
        expected = cfg.sync_diurnal * a.onsets * b.onsets / span
        surprise = -math.log10(max(poisson_tail(shared, expected), 1e-300))
        frac = surprise / cfg.sync_full_surprise
        return self.weight["y"] * (frac if frac < 1.0 else 1.0)

    def shared(self, members: list[str]) -> list[tuple[str, float, list[str]]]:
        """Values held by at least two of ``members``: (key, rarity weight, holders).

        Burst onsets are summarised as one ``y:`` item (members that share at least
        ``sync_min_shared`` onsets with the others), since one shared bucket alone
        proves nothing.
        """
        holders_of: dict[str, list[str]] = {}
        for acct in members:
            h = self.holders.get(acct)
            if h is None:
                continue
            for key in h.keys:
                holders_of.setdefault(key, []).append(acct)
        out = []
        sync_count: dict[str, int] = {}
        sync_frac: list[float] = []
        for key, accts in holders_of.items():
            value = self.values.get(key)
            if len(accts) < 2 or value is None:
                continue
            if key[0] == "y":
                for acct in accts:
                    sync_count[acct] = sync_count.get(acct, 0) + 1
                continue
            out.append((key, self.weight[key[0]] * self.rarity(len(value.members)), accts))
        synced = sorted(a for a, n in sync_count.items() if n >= self.config.sync_min_shared)
        if len(synced) >= 2:
            for acct in synced:
                sync_frac.append(sync_count[acct] / max(1, self.holders[acct].onsets))
            frac = sorted(sync_frac)[len(sync_frac) // 2]
            out.append(
                (
                    f"y:{len(synced)} accounts, median {frac:.0%} of burst onsets shared",
                    self.weight["y"] * frac,
                    synced,
                )
            )
        return out
