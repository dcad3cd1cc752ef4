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
the same worker, de-duplication and merge code as the account stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from distillguard.clock import EventClock
from distillguard.detectors.pipeline import BatchOutput
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
    processed event, in processing order) to send before it commits.
    """

    def __init__(
        self,
        account: Any,
        extraction_weights: Mapping[str, float],
        setting_weights: Mapping[str, float],
    ) -> None:
        self.account = account
        self.clock: EventClock = account.clock
        self._judges = member_judges(account, extraction_weights, setting_weights)
        self._handoff: list[HandoffEvent] = []
        account.take_changed()  # start keeping them

    def process(self, event: RequestEvent) -> bool:
        account = self.account
        raised: bool = account.process(event)
        changed = account.take_changed()
        scores = [self._score(a) for a in changed] if changed else []
        self._handoff.append(_handoff(event, scores))
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
        return out

    def risk(self, account_id: str) -> AccountRisk:
        risk: AccountRisk = self.account.risk(account_id)
        return risk

    def learn_label(self, label: Label) -> None:
        self.account.learn_label(label)

    def accounts(self) -> list[str]:
        accounts: list[str] = self.account.accounts()
        return accounts

    def snapshot_shared(self) -> bytes:
        shared: bytes = self.account.snapshot_shared()
        return shared

    def restore(self, shared: bytes) -> None:
        self.account.restore(shared)
        self._handoff = []

    def snapshot_accounts(self, account_ids: Iterable[str]) -> dict[str, bytes]:
        states: dict[str, bytes] = self.account.snapshot_accounts(account_ids)
        return states

    def restore_accounts(self, states: dict[str, bytes]) -> None:
        self.account.restore_accounts(states)

    def forget(self, account_ids: Iterable[str]) -> None:
        self.account.forget(account_ids)


def _handoff(event: RequestEvent, scores: list[MemberScore]) -> HandoffEvent:
    """The fields the cluster stage reads (the worker's identity fields, the evidence
    the linkage stage keys, the prompt it samples), and the scores."""
    return HandoffEvent(
        event_id=event.event_id,
        ts=event.ts,
        account_id=event.account_id,
        model="-",
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        status=event.status,
        org_id=event.org_id,
        ip=event.ip,
        asn=event.asn,
        user_agent=event.user_agent,
        payment_fingerprint=event.payment_fingerprint,
        prompt=event.prompt,
        system_prompt=event.system_prompt,
        prompt_fingerprint=event.prompt_fingerprint,
        scores=scores,
    )


__all__ = [
    "AccountStage",
    "HandoffEvent",
    "MemberScore",
    "member_judges",
    "weighted",
]
