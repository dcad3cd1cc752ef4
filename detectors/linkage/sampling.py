"""What of a request the linkage reads, decided by the account's own requests alone.

Per request the linkage reads little: the time, the account, output tokens, and only
now and then a prompt (an account's first requests, then one in so many: template
bands and provenance items cost microseconds of text work) or an attribute (a card,
a network, an agent, a system prompt, the org: when it changes, and again once a
minute to keep the membership fresh). Which requests those are used to follow the
linkage's holder of the account — and a holder is dropped when the cluster stage's
clock finds it idle. In a split topology the account stage must know what to forward
(forwarding everything made the hand-off most of the input's bytes), and it sees
neither the cluster stage's holders nor its clock.

So the decision is a function of the account's own sequence of requests: a count
that restarts when a request comes more than ``restart_gap_s`` after the account's
latest one, and the attribute values last read with the time they were last
refreshed. The linkage and the account stage each keep a :class:`RequestSampler`;
both see the same requests of an account in the same order, so they decide alike,
and the account stage forwards exactly what the linkage will read.

An idle account's entry can be dropped without changing any decision: once the clock
is ``restart_gap_s + max_behind_s`` past the account's latest request, any request the
edge still accepts (at most ``max_behind_s`` behind the clock) restarts the entry
anyway. That bounds memory to the accounts seen in that span.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from distillguard.detectors.linkage.config import LinkageConfig
from distillguard.detectors.state import SamplerEntry, SamplerState
from distillguard.events import RequestEvent

__all__ = [
    "ASN",
    "IP",
    "ORG",
    "PAYMENT",
    "PROVENANCE",
    "SYSTEM_PROMPT",
    "TEMPLATE",
    "USER_AGENT",
    "RequestSampler",
    "SamplerState",
    "request_sampler",
]

#: read the prompt for template bands
TEMPLATE = 1
#: read the prompt for a content-provenance item
PROVENANCE = 2
#: read the attribute (new to the account, or due for its refresh)
PAYMENT = 4
IP = 8
ASN = 16
USER_AGENT = 32
SYSTEM_PROMPT = 64
ORG = 128
#: an attribute read again after this long, so its membership stays fresh
REFRESH_S = 60.0
#: decisions between sweeps of idle entries (a sweep is one pass over the entries)
_SWEEP_EVERY = 65_536
#: an entry's slots: count, latest time, last refresh, then the attributes' last values
#: (payment, ip, asn, user agent, system prompt, org); the hot path indexes them literally
_SLOTS = 9


class RequestSampler:
    """Per account: which of this request's prompt and attributes the linkage reads.

    Examples
    --------
    >>> from distillguard.events import RequestEvent
    >>> s = RequestSampler(first=2, every=4, prov_first=1, prov_every=8, restart_gap_s=100)
    >>> def ev(t, ip="198.51.100.7"):
    ...     return RequestEvent(event_id="e", ts=t, account_id="a", model="m",
    ...                         input_tokens=1, output_tokens=1, status=200, ip=ip)
    >>> [s.sample(ev(float(t))) & (TEMPLATE | PROVENANCE) for t in range(8)]
    [3, 1, 0, 1, 0, 0, 0, 3]
    >>> [bool(s.sample(ev(t)) & IP) for t in (8.0, 9.0, 70.0)]  # unchanged, then refreshed
    [False, False, True]
    >>> bool(s.sample(ev(71.0, ip="203.0.113.9")) & IP)        # changed
    True
    >>> s.sample(ev(500.0)) & (TEMPLATE | PROVENANCE | IP)       # after a long gap: anew
    11
    """

    __slots__ = (
        "_calls",
        "_entries",
        "every",
        "first",
        "prov_every",
        "prov_first",
        "restart_gap_s",
    )

    def __init__(
        self,
        first: int,
        every: int,
        prov_first: int,
        prov_every: int,
        restart_gap_s: float,
    ) -> None:
        self.first, self.every = first, max(1, every)
        self.prov_first, self.prov_every = prov_first, max(1, prov_every)
        self.restart_gap_s = restart_gap_s
        self._entries: dict[str, list[Any]] = {}
        self._calls = 0

    def sample(self, event: RequestEvent) -> int:
        """Count this request; what of it to read, as ``TEMPLATE | PROVENANCE | IP ...``."""
        ts = event.ts
        # literal slots (see _SLOTS above): this runs once per request
        e = self._entries.get(event.account_id)
        if e is None:
            e = self._entries[event.account_id] = [0, ts, ts, None, None, None, None, None, None]
        elif ts - e[1] > self.restart_gap_s:
            e[:] = [0, ts, ts, None, None, None, None, None, None]
        elif ts > e[1]:
            e[1] = ts
        n = e[0] + 1
        e[0] = n
        self._calls += 1
        bits = TEMPLATE if n <= self.first or n % self.every == 0 else 0
        if n <= self.prov_first or n % self.prov_every == 0:
            bits |= PROVENANCE
        refresh = ts - e[2] >= REFRESH_S
        if refresh:
            e[2] = ts
        v: Any = event.payment_fingerprint
        if v is not None and (refresh or v != e[3]):
            e[3] = v
            bits |= PAYMENT
        v = event.ip
        if v is not None and (refresh or v != e[4]):
            e[4] = v
            bits |= IP
        v = event.asn
        if v is not None and (refresh or v != e[5]):
            e[5] = v
            bits |= ASN
        v = event.user_agent
        if v is not None and (refresh or v != e[6]):
            e[6] = v
            bits |= USER_AGENT
        v = event.system_prompt
        if v is not None and (refresh or v != e[7]):
            e[7] = v
            bits |= SYSTEM_PROMPT
        v = event.org_id
        if v is not None and (refresh or v != e[8]):
            e[8] = v
            bits |= ORG
        return bits

    def due(self) -> bool:
        """Whether a sweep of idle entries is due (every 65,536 requests)."""
        return self._calls >= _SWEEP_EVERY

    def sweep(self, now: float, max_behind_s: float) -> list[str]:
        """Drop entries no request the edge accepts could still continue; which."""
        self._calls = 0
        horizon = now - self.restart_gap_s - max_behind_s
        if not math.isfinite(horizon):
            return []
        idle = [a for a, e in self._entries.items() if e[1] < horizon]
        for a in idle:
            del self._entries[a]
        return idle

    def entry(self, account_id: str) -> SamplerEntry | None:
        """The account's entry, for its per-account checkpoint."""
        e = self._entries.get(account_id)
        return None if e is None else tuple(e)

    def put(self, account_id: str, entry: SamplerEntry) -> None:
        """Set an account's entry from :meth:`entry` (its checkpoint restored)."""
        self._entries[account_id] = _checked(account_id, entry)

    def account_ids(self) -> list[str]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    # -- state -----------------------------------------------------------------------------

    def to_state(self) -> SamplerState:
        """Every entry (the linkage's shared checkpoint)."""
        return SamplerState(entries={a: tuple(e) for a, e in self._entries.items()})

    def load(self, state: SamplerState) -> None:
        """Replace the entries with a :meth:`to_state`'s; ValueError, nothing changed,
        on a malformed entry."""
        self._entries = {a: _checked(a, e) for a, e in state.entries.items()}

    def forget(self, account_ids: Iterable[str]) -> None:
        for a in account_ids:
            self._entries.pop(a, None)


def _checked(account_id: str, entry: SamplerEntry) -> list[Any]:
    if len(entry) != _SLOTS:
        raise ValueError(f"sampler entry of {account_id!r} has {len(entry)} slots, not {_SLOTS}")
    return list(entry)


def request_sampler(cfg: LinkageConfig) -> RequestSampler:
    """The linkage's sampler: the stage and a split topology's account stage build it
    from the same settings, so they read and forward the same requests."""
    return RequestSampler(
        cfg.sample_first,
        cfg.sample_every,
        cfg.provenance_first,
        cfg.provenance_every,
        restart_gap_s=cfg.account_ttl_s,
    )
