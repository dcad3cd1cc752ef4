"""What the linkage reads of a request, decided alike by the account and cluster stages.

The split topology forwards a prompt or an attribute only when the linkage will read
it (``detectors/linkage/sampling.py``). These tests hold that to account without a
broker: the cluster stage's linkage, fed the account stage's records through the wire
format, must end with the single process's evidence, holder by holder; the sampler's
sweep of idle entries must change no decision; its per-account entry must survive a
checkpoint and a move to another account worker.
"""

from __future__ import annotations

import random

import pytest

from distillguard.detectors.linkage.handoff import AccountStage
from distillguard.detectors.linkage.pipeline import LinkedPipeline
from distillguard.detectors.linkage.sampling import (
    IP,
    ORG,
    PAYMENT,
    PROVENANCE,
    TEMPLATE,
    RequestSampler,
)
from distillguard.detectors.pipeline import build_pipeline
from distillguard.events import RequestEvent
from distillguard.settings import Settings
from distillguard.stream.handoff import decode_batch, encode_batches

DAY = 86_400.0
T0 = 1_790_000_000.0


def _settings(stage: str) -> Settings:
    s = Settings()
    return s.model_copy(update={"worker": s.worker.model_copy(update={"stage": stage})})


def _traffic(seed: int, accounts: int = 40, days: float = 9.0) -> list[RequestEvent]:
    """Accounts that rotate networks and cards, come back after days away (longer than
    the linkage keeps an idle holder), redact some prompts, share a system prompt, and
    send now and then an event hours late: what the sampler must follow."""
    rng = random.Random(seed)
    out: list[tuple[float, int, RequestEvent]] = []
    for a in range(accounts):
        t = T0 + rng.uniform(0, DAY)
        end = T0 + days * DAY
        redacted = a % 5 == 0
        n = 0
        while t < end:
            n += 1
            late = rng.random() < 0.02
            ts = t - rng.uniform(600, 6 * 3600) if late else t
            prompt = f"Explain step by step topic {rng.randrange(400)} for account {a % 7}"
            out.append(
                (
                    ts,
                    len(out),
                    RequestEvent(
                        event_id=f"{a}-{n}",
                        ts=ts,
                        account_id=f"acct{a}",
                        model="m",
                        input_tokens=10,
                        output_tokens=rng.randrange(50, 900),
                        status=200,
                        org_id=f"org{a % 4}" if a % 3 == 0 and n > 3 else None,
                        ip=f"198.51.{a % 6}.{rng.randrange(4) if a % 2 else 7}",
                        asn=64_500 + a % 3,
                        user_agent="openai-python/1.54.3" if a % 2 else "aiohttp/3.9",
                        payment_fingerprint=f"card-{a % 9 if rng.random() < 0.9 else 99}",
                        system_prompt="You are a careful tutor." if a % 4 == 0 else None,
                        prompt=None if redacted else prompt,
                        prompt_fingerprint=f"{rng.getrandbits(64):016x}" if redacted else None,
                    ),
                )
            )
            gap = rng.expovariate(1 / 300.0)
            if rng.random() < 0.004:
                gap += rng.uniform(3.2, 4.5) * DAY  # away longer than a holder is kept
            t += gap
    out.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in out]


def _accepted(pipeline: object, events: list[RequestEvent]) -> list[RequestEvent]:
    """The events the worker's clock would accept, processed one by one."""
    kept = []
    for e in events:
        if pipeline.clock.judge(e.ts) is None:  # type: ignore[attr-defined]
            pipeline.process(e)  # type: ignore[attr-defined]
            kept.append(e)
    return kept


def _holders(p: LinkedPipeline) -> dict[str, tuple[object, ...]]:
    g = p.linkage._graph
    return {
        a: (sorted(h.keys.items()), h.events, h.out_tokens, h.org, sorted(h.tpl), h.centroid)
        for a, h in g.holders.items()
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_the_cluster_stage_reads_what_one_process_reads(seed: int) -> None:
    events = _traffic(seed)
    one = build_pipeline(_settings("all"))
    assert isinstance(one, LinkedPipeline)
    accepted = _accepted(one, events)

    account = build_pipeline(_settings("account"))
    assert isinstance(account, AccountStage)
    for e in accepted:
        account.process(e)
    handoff = account.drain().handoff
    assert len(handoff) == len(accepted)
    sources = [(0, i) for i in range(len(handoff))]
    records = encode_batches(handoff, sources, {0: len(handoff)})
    cluster = build_pipeline(_settings("cluster"))
    assert isinstance(cluster, LinkedPipeline)
    for _, record in records:
        for e in decode_batch(record).events:
            cluster.process(e)

    # the stream exercised what the sampler decides: long gaps dropped holders
    assert one.linkage.stats()["accounts"] < 40
    prompts = sum(1 for e in handoff if e.prompt)
    assert 0 < prompts < len(handoff) / 3
    assert _holders(cluster) == _holders(one)
    assert cluster.linkage._sampler.to_state() == one.linkage._sampler.to_state()


def test_a_sweep_of_idle_entries_changes_no_decision() -> None:
    events = _traffic(3, accounts=30, days=12)
    kept, swept = (
        RequestSampler(8, 16, 16, 64, restart_gap_s=3 * DAY),
        RequestSampler(8, 16, 16, 64, restart_gap_s=3 * DAY),
    )
    max_behind = 7 * 3600.0  # the traffic's late events are at most 6 h behind
    now = -float("inf")
    dropped = 0
    for i, e in enumerate(events):
        now = max(now, e.ts)
        assert kept.sample(e) == swept.sample(e), e
        if i % 500 == 0:
            dropped += len(swept.sweep(now, max_behind))
    assert dropped > 0  # entries were dropped, and nothing decided differently
    assert len(swept) < len(kept)


def test_the_sampler_reads_first_requests_changes_and_refreshes() -> None:
    s = RequestSampler(2, 4, 1, 8, restart_gap_s=DAY)

    def ev(ts: float, **kw: object) -> RequestEvent:
        return RequestEvent(
            event_id="e",
            ts=ts,
            account_id="a",
            model="m",
            input_tokens=1,
            output_tokens=1,
            status=200,
            **kw,  # type: ignore[arg-type]
        )

    first = s.sample(ev(T0, payment_fingerprint="card-1", org_id="org"))
    assert first & TEMPLATE and first & PROVENANCE and first & PAYMENT and first & ORG
    same = s.sample(ev(T0 + 1, payment_fingerprint="card-1", org_id="org"))
    assert not same & (PAYMENT | ORG | PROVENANCE) and same & TEMPLATE  # 2nd of first 2
    assert s.sample(ev(T0 + 2, payment_fingerprint="card-2")) & PAYMENT  # a new card
    assert s.sample(ev(T0 + 61, payment_fingerprint="card-2")) & PAYMENT  # a refresh
    assert not s.sample(ev(T0 + 62, ip=None)) & IP  # no attribute, nothing to read
    restarted = s.sample(ev(T0 + 2 * DAY, payment_fingerprint="card-2"))
    assert restarted & TEMPLATE and restarted & PROVENANCE and restarted & PAYMENT


def test_an_accounts_entry_moves_with_its_state_to_another_account_worker() -> None:
    events = _traffic(4, accounts=12, days=1.0)
    whole = build_pipeline(_settings("account"))
    first = build_pipeline(_settings("account"))
    second = build_pipeline(_settings("account"))
    assert isinstance(whole, AccountStage) and isinstance(first, AccountStage)
    assert isinstance(second, AccountStage)
    half = len(events) // 2
    for e in events[:half]:
        whole.process(e)
        first.process(e)
    accounts = sorted({e.account_id for e in events[:half]})
    states = first.snapshot_accounts(accounts)
    assert set(states) == set(accounts)
    second.restore(first.snapshot_shared())
    second.restore_accounts(states)  # the partition moved: the second worker goes on
    for e in events[half:]:
        whole.process(e)
        second.process(e)
    moved = first.drain().handoff + second.drain().handoff
    assert [(h.prompt, h.ip, h.payment_fingerprint) for h in moved] == [
        (h.prompt, h.ip, h.payment_fingerprint) for h in whole.drain().handoff
    ]


def test_account_states_refuse_a_corrupt_entry_and_read_the_older_format() -> None:
    stage = build_pipeline(_settings("account"))
    assert isinstance(stage, AccountStage)
    events = _traffic(5, accounts=6, days=2.0)
    for e in events:
        stage.process(e)
    a, b = sorted({e.account_id for e in events})[:2]
    states = stage.snapshot_accounts([a, b])
    inner = stage.account.snapshot_accounts([a])
    assert set(inner) == {a}
    fresh = build_pipeline(_settings("account"))
    assert isinstance(fresh, AccountStage)
    fresh.restore_accounts(inner)  # an account pipeline's own state, from before
    assert a in fresh.account.accounts() and fresh._sampler.entry(a) is None
    with pytest.raises(ValueError, match=b):
        fresh.restore_accounts({a: states[a], b: states[b][:-3]})
    assert fresh._sampler.entry(a) is None  # all or nothing
    fresh.restore_accounts(states)
    assert fresh._sampler.entry(a) == stage._sampler.entry(a)


def test_the_member_table_lets_idle_accounts_go() -> None:
    from distillguard.detectors.linkage.handoff import HandoffEvent, MemberScore
    from distillguard.detectors.linkage.members import MemberTable

    table = MemberTable(judges=True, judges_setting=False, times_kept=8, idle_evict_s=DAY)

    def ev(account: str, ts: float) -> HandoffEvent:
        return HandoffEvent(
            event_id="-",
            ts=ts,
            account_id=account,
            model="-",
            input_tokens=0,
            output_tokens=1,
            status=200,
            scores=[MemberScore(account, 0.5, 1.0, 0.0)],
        )

    for i in range(10):
        table.process(ev("old", T0 + i))
    for i in range(10):
        table.process(ev("new", T0 + 2 * DAY + i))
    assert table.evict_idle() == 1
    assert table.accounts() == ["new"] and table.requests_made("old") == 0
    assert table.risk("old").risk == 0.0 and table.risk("new").risk == 0.5
    assert table.evict_idle() == 0


def test_an_account_the_detectors_let_go_keeps_its_sampler_entry_in_its_checkpoint() -> None:
    """Detectors may forget an idle account (``idle_evict_s``) sooner than the sampler
    may: its checkpoint must then hold the entry alone, or a restarted account worker
    would count the account's requests from 1 where the cluster stage goes on."""
    s = Settings()
    detectors = s.detectors.model_copy(update={"idle_evict_s": 3600.0})
    settings = s.model_copy(
        update={"worker": s.worker.model_copy(update={"stage": "account"}), "detectors": detectors}
    )
    stage = build_pipeline(settings)
    assert isinstance(stage, AccountStage)
    events = _traffic(6, accounts=6, days=0.3)
    for e in events:
        stage.process(e)
    first = events[0].account_id
    stage.clock.advance(max(e.ts for e in events) + 2 * 3600.0)
    assert stage.account.evict_idle() > 0
    out = stage.drain()
    assert first in out.forgotten and first not in stage.account.accounts()
    kept = stage.snapshot_accounts([first])
    assert set(kept) == {first}  # the entry alone, not nothing
    fresh = build_pipeline(settings)
    assert isinstance(fresh, AccountStage)
    fresh.restore_accounts(kept)
    assert fresh._sampler.entry(first) == stage._sampler.entry(first)
    assert first not in fresh.account.accounts()
    assert first in fresh.accounts()  # so a rollback forgets it too
