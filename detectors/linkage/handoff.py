"""The account stage's hand-off to the cluster stage, when the pipeline is split.

With ``distillguard worker --stage account`` (N processes, keyed by account) and
``--stage cluster`` (one process), cluster detection works with any number of
account workers: each account worker forwards, for every event it processes, the
event's linkage evidence and the scores of the accounts it rescored, to the
``topics.linkage`` topic, in the source partition's order (partition p of
``api-requests`` goes to partition p of the hand-off topic). The cluster stage merges
those partitions by event time exactly as a single worker merges ``api-requests``, so
it meets the events in the order the single process met them and its linkage stage
reaches the same clusters. What it asks of members while scoring (risk, extraction,
shared settings) it reads from the scores the records carried, which are the
account stage's values after that account's last event: what the single process
would have read at that moment.

The record is a :class:`~distillguard.events.RequestEvent` (what the stage reads of
it; typed msgpack, never pickle) with the scores appended, so the cluster stage runs
the same worker and merge code as the account stage. It carries a prompt or an
attribute (card, network, agent, system prompt, org) only when the linkage will read
it: the account stage keeps the linkage's own
:class:`~distillguard.detectors.linkage.sampling.RequestSampler`, which decides from
the account's requests alone, so both stages pick the same ones. Prompts and
attributes were most of a record's bytes; without them the hand-off is a few percent
of the input.
Fields the stage never reads (event id: the account stage de-duplicated already;
model, input tokens, status) travel as constants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from distillguard.clock import EventClock
from distillguard.detectors.linkage.config import LinkageConfig
from distillguard.detectors.linkage.sampling import (
    ASN,
    IP,
    ORG,
    PAYMENT,
    PROVENANCE,
    SYSTEM_PROMPT,
    TEMPLATE,
    USER_AGENT,
    RequestSampler,
    request_sampler,
)
from distillguard.detectors.pipeline import BatchOutput
from distillguard.detectors.state import SamplerEntry
from distillguard.events import RequestEvent
from distillguard.records import AccountRisk, Label


class MemberScore(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What the cluster stage may ask of a member: risk, extraction and setting log-odds
    (``extraction_weights``, ``shared_setting_weights``); all zero for a forgotten one."""

    account_id: str
    risk: float
    extraction: float
    setting: float


class HandoffEvent(RequestEvent, kw_only=True, frozen=True, gc=False, array_like=True):
    """One event as the cluster stage needs it, with the scores that changed with it.

    Encoded as an array (no field names: they were two fifths of a record's bytes), of
    the fields the stage reads; ``model`` is required by the event type, unread there.
    """

    scores: list[MemberScore] = msgspec.field(default_factory=list)


def weighted(signals: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Signals' log-odds weighted (a dict lookup per signal): a member's extraction or
    client-setting score."""
    return sum(weights.get(s, 0.0) * v for s, v in signals.items())


Judge = Callable[[str], float]


def member_judges(
    account: Any, extraction_weights: Mapping[str, float], setting_weights: Mapping[str, float]
) -> tuple[Judge | None, Judge | None]:
    """The member extraction and setting scores an account pipeline can give, or None.

    Judged only when the account detectors have a rule that can see extraction: a
    pipeline configured without rules would otherwise call every cluster honest.
    """
    signals = getattr(account, "signal_logodds", None)
    rules = getattr(getattr(account, "rules", None), "rules", ())
    sees = any(extraction_weights.get(r.signal, 0.0) > 0 for r in rules)
    if not callable(signals) or not sees:
        return None, None

    def extraction(account_id: str) -> float:
        return weighted(signals(account_id), extraction_weights)

    def setting(account_id: str) -> float:
        return weighted(signals(account_id), setting_weights)

    return extraction, (setting if setting_weights else None)


class AccountStage:
    """The account pipeline of a split topology: detects per account, forwards linkage.

    A :class:`~distillguard.detectors.pipeline.Pipeline` around an account pipeline:
    every method delegates, and :meth:`process` also writes the event's hand-off
    record, which :meth:`drain` hands the worker (``BatchOutput.handoff``, one per
    processed event, in processing order) to send before it commits. The prompt
    sampler's entry of an account travels with the account's state (a rebalance
    moves it, as it moves the account).
    """

    def __init__(
        self,
        account: Any,
        extraction_weights: Mapping[str, float],
        setting_weights: Mapping[str, float],
        linkage: LinkageConfig,
    ) -> None:
        self.account = account
        self.clock: EventClock = account.clock
        self._judges = member_judges(account, extraction_weights, setting_weights)
        self._handoff: list[HandoffEvent] = []
        self._sampler: RequestSampler = request_sampler(linkage)
        account.take_changed()  # start keeping them

    def process(self, event: RequestEvent) -> bool:
        account = self.account
        raised: bool = account.process(event)
        changed = account.take_changed()
        scores = [self._score(a) for a in changed] if changed else []
        sampled = self._sampler.sample(event)
        self._handoff.append(_handoff(event, scores, sampled))
        return raised

    def _score(self, account_id: str) -> MemberScore:
        extraction, setting = self._judges
        return MemberScore(
            account_id,
            self.account.risk(account_id).risk,
            extraction(account_id) if extraction is not None else 0.0,
            setting(account_id) if setting is not None else 0.0,
        )

    def drain(self) -> BatchOutput:
        out: BatchOutput = self.account.drain()
        out.handoff, self._handoff = self._handoff, []
        if self._sampler.due():
            # an account with neither detector state nor a sampler entry is gone: the
            # worker deletes its checkpoint (one the detectors let go kept the entry)
            swept = self._sampler.sweep(self.clock.now, self.clock.max_behind_s)
            tracked = set(self.account.accounts()) if swept else set()
            out.forgotten.extend(a for a in swept if a not in tracked)
        return out

    def risk(self, account_id: str) -> AccountRisk:
        risk: AccountRisk = self.account.risk(account_id)
        return risk

    def learn_label(self, label: Label) -> None:
        self.account.learn_label(label)

    def accounts(self) -> list[str]:
        """Accounts with per-account state: the detectors' and the sampler's (a rollback
        forgets them all before restoring)."""
        accounts: list[str] = self.account.accounts()
        tracked = set(accounts)
        return accounts + [a for a in self._sampler.account_ids() if a not in tracked]

    def snapshot_shared(self) -> bytes:
        shared: bytes = self.account.snapshot_shared()
        return shared

    def restore(self, shared: bytes) -> None:
        self.account.restore(shared)
        self._handoff = []

    def snapshot_accounts(self, account_ids: Iterable[str]) -> dict[str, bytes]:
        """The account pipeline's states, each with the account's sampler entry."""
        ids = list(account_ids)
        inner: dict[str, bytes] = self.account.snapshot_accounts(ids)
        out = {}
        for a in ids:
            entry = self._sampler.entry(a)
            state = inner.get(a)
            if entry is not None:
                out[a] = _STAGED + _encode_staged(StagedAccount(entry, state))
            elif state is not None:
                out[a] = state
        return out

    def restore_accounts(self, states: dict[str, bytes]) -> None:
        """All or nothing, as the account pipeline's: a malformed state loads none."""
        inner: dict[str, bytes] = {}
        entries: list[tuple[str, StagedAccount]] = []
        for a, data in states.items():
            if not data.startswith(_STAGED):  # the account pipeline's own (older) format
                inner[a] = data
                continue
            try:
                staged = _decode_staged(data[len(_STAGED) :])
            except msgspec.DecodeError as exc:
                raise ValueError(f"corrupt state for account {a!r}: {exc}") from None
            entries.append((a, staged))
            if staged.state is not None:
                inner[a] = staged.state
        self.account.restore_accounts(inner)
        for a, staged in entries:
            self._sampler.put(a, staged.sampled)

    def forget(self, account_ids: Iterable[str]) -> None:
        ids = list(account_ids)
        self.account.forget(ids)
        self._sampler.forget(ids)


class StagedAccount(msgspec.Struct, array_like=True, frozen=True):
    """An account's checkpoint in the account stage: its sampler entry, then the
    account pipeline's state (None if that pipeline has already let it go)."""

    sampled: SamplerEntry
    state: bytes | None


#: marks an account stage's per-account state; the account pipeline's own states are
#: msgpack maps and never start with a zero byte
_STAGED = b"\x00dg1"
_encode_staged = msgspec.msgpack.Encoder().encode
_decode_staged = msgspec.msgpack.Decoder(StagedAccount).decode


#: the sampler's bits under which the linkage reads the prompt
PROMPT = TEMPLATE | PROVENANCE


def _handoff(event: RequestEvent, scores: list[MemberScore], sampled: int) -> HandoffEvent:
    """What the cluster stage reads of ``event`` (``sampled``: what its linkage will read
    of it), and the scores.

    An unsampled request keeps its fingerprint only if it had no prompt: the linkage
    counts a redacted request's fingerprint every time, a plain request's never.
    """
    if sampled & PROMPT:
        prompt, fingerprint = event.prompt, event.prompt_fingerprint
    else:
        prompt = None
        fingerprint = event.prompt_fingerprint if event.prompt is None else None
    return HandoffEvent(
        event_id="-",
        ts=event.ts,
        account_id=event.account_id,
        model="-",
        input_tokens=0,
        output_tokens=event.output_tokens,
        status=200,
        org_id=event.org_id if sampled & ORG else None,
        ip=event.ip if sampled & IP else None,
        asn=event.asn if sampled & ASN else None,
        user_agent=event.user_agent if sampled & USER_AGENT else None,
        payment_fingerprint=event.payment_fingerprint if sampled & PAYMENT else None,
        prompt=prompt,
        system_prompt=event.system_prompt if sampled & SYSTEM_PROMPT else None,
        prompt_fingerprint=fingerprint,
        scores=scores,
    )


__all__ = [
    "AccountStage",
    "HandoffEvent",
    "MemberScore",
    "StagedAccount",
    "member_judges",
    "weighted",
]
