"""Adaptive attacker variants: distillers who have read docs/detectors.md and docs/linkage.md.

Each variant dodges one family of documented signals (or, for the composites, several)
with the cheap tactics of ``sim/tactics.py``, and each still leaves a trace a strong
detector could find -- one controller's clock, one content source, one change of
regime. docs/adversaries.md tables what each dodges and what it leaves;
``sim/traces.py`` measures the traces and ``tests/test_adversaries.py`` checks they are
there. Families (``FAMILY``) group variants for leave-one-family-out evaluation
(configs/protocol.yaml).

Classic campaign pieces (templates, the harvested corpora) come from
``sim/attackers.py``; nothing here changes what the classic archetypes generate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillguard.sim.attackers import TEMPLATES
from distillguard.sim.benign import CONSUMER, EVENING, FLAT, WORK
from distillguard.sim.network import SCRIPT_USER_AGENTS, as_by_kind
from distillguard.sim.tactics import (
    FILLER,
    HARVEST,
    HUMAN,
    HUMAN_SOURCES,
    ContentQueue,
    Plan,
    Wording,
    borrow_from_honest,
    complete,
    controller_windows,
    fill_cover,
    hand_out,
    human_sessions,
    merge,
    restricted_weights,
    reword_bare,
    rotate_wraps,
    sdk_defaults,
    sticky_home,
    tick_grid,
    vendor_user_agent,
    warm_up,
    window_activity,
)
from distillguard.sim.traffic import (
    DAY,
    HOUR,
    Account,
    Archetype,
    Context,
    Events,
    Group,
    choose,
    group_rng,
    hour_weights,
    poisson_times,
)

Generated = list[tuple[Account, Events]]


def _campaign_rng(ctx: Context, group: Group) -> np.random.Generator:
    return np.random.default_rng([ctx.scenario.seed, group.index, 2_000_003])


def _distiller(ctx: Context, group: Group, payment: str | None = None) -> Account:
    """An account of its own: own card, own org -- nothing an identity link could join."""
    return Account(
        account_id=ctx.new_id("acct"),
        archetype=group.archetype,
        label="distiller",
        campaign=group.campaign,
        org_id=ctx.new_id("org"),
        payment=payment or ctx.new_id("pf"),
        endpoint="/v1/messages",
    )


def _roles(rng: np.random.Generator, n: int, mundane_share: float) -> np.ndarray:
    return np.where(rng.random(n) < mundane_share, FILLER, HARVEST).astype(np.int8)


def _campaign_wraps(ctx: Context, crng: np.random.Generator, count: int) -> np.ndarray:
    picks = crng.choice(len(TEMPLATES), size=max(1, min(count, len(TEMPLATES))), replace=False)
    return np.asarray([ctx.wrap(TEMPLATES[int(i)]) for i in picks], dtype=np.int16)


def _rotation(ctx: Context, wraps: np.ndarray) -> list[int]:
    """The campaign's templates first, then the other classic ones: what it re-asks in."""
    rest = [ctx.wrap(t) for t in TEMPLATES if ctx.wrap(t) not in set(wraps.tolist())]
    return [*wraps.tolist(), *rest]


def _word(ev: Events, rng: np.random.Generator, role: np.ndarray, wording: Wording) -> np.ndarray:
    """Free wording on harvest events, none elsewhere; returns the reasoning-asked mask."""
    wrap = np.zeros(ev.n, dtype=np.int16)
    asks = np.zeros(ev.n, dtype=bool)
    harvest = role == HARVEST
    w, a = wording.draw(rng, int(harvest.sum()))
    wrap[harvest], asks[harvest] = w, a
    ev.put("wrap", wrap)
    return asks


def _templated(
    ev: Events, rng: np.random.Generator, role: np.ndarray, wraps: np.ndarray
) -> np.ndarray:
    """The campaign's template on harvest events (classic wording: reasoning asked)."""
    harvest = role == HARVEST
    wrap = np.where(harvest, wraps[rng.integers(0, len(wraps), size=ev.n)], 0).astype(np.int16)
    ev.put("wrap", wrap)
    return harvest.copy()


def _windows_per_day(p: dict[str, Any]) -> float:
    return 24.0 / (0.5 * (p["window_gap_h"][0] + p["window_gap_h"][1]))


# -- infrastructure family --------------------------------------------------------------------


def residential_fleet(ctx: Context, group: Group, _rng: np.random.Generator) -> Generated:
    """Dodges identity and network links: a card each, one sticky home address each, all
    inside one large residential ISP, vendor SDK agents, starts staggered over days.

    Keeps the classic harvest (one campaign template, reasoning asked, temperature 0,
    long outputs). Trace: the controller's clock -- every account is active only inside
    the scheduler's irregular windows -- and the campaign's one template.
    """
    p = group.params
    crng = _campaign_rng(ctx, group)
    windows = controller_windows(crng, ctx.start, ctx.end, tuple(p["window_gap_h"]))
    wraps = _campaign_wraps(ctx, crng, p["templates"])
    queue = ContentQueue(ctx, crng, p["sources"])
    per_window = p["per_account_daily"] / (_windows_per_day(p) * p["participation"])
    plans = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group)
        ip, _ = sticky_home(ctx, rng, p["asn"])
        born = ctx.start + float(rng.uniform(0, p["stagger_days"])) * DAY
        ts = window_activity(
            rng,
            windows,
            p["window_minutes"],
            p["participation"],
            per_window,
            p["gap_median_s"],
            born,
            ctx.end,
        )
        ev = Events(ts)
        role = _roles(rng, ev.n, p["mundane_share"])
        asks = _templated(ev, rng, role, wraps)
        fill_cover(ctx, rng, ev, role, HUMAN_SOURCES)
        ev.put("model", ctx.flagship)
        ev.put("ip", ip)
        ev.put("ua", ctx.uas.add(vendor_user_agent(rng)))
        ev.put("temperature", p["temperature"])
        ev.put("max_tokens", p["max_tokens"])
        ev.put("stream", False)
        plans.append(Plan(acct, ev, rng, role, asks))
    borrow_from_honest(ctx, group, plans, p["borrowed_home_share"], p["borrowed_card_share"])
    hand_out(queue, plans)
    rotate_wraps(plans, _rotation(ctx, wraps), np.zeros(len(plans), dtype=np.int64))
    return complete(ctx, plans, p)


# -- content family ----------------------------------------------------------------------------


def free_form_hydra(ctx: Context, group: Group, _rng: np.random.Generator) -> Generated:
    """Dodges templating and elicitation: every prompt worded afresh, reasoning asked in
    free words (``reasoning: free``) or not at all (``none``), SDK default parameters.

    Keeps a hydra's infrastructure (one hosting proxy pool, one scripted client) and
    its tight synchronised windows. Trace: the shared proxy pool and the windows, and
    the content source -- one dispatcher's sweep, so no two accounts ever send one item.
    """
    p = group.params
    crng = _campaign_rng(ctx, group)
    hosting = as_by_kind("hosting")
    proxy = ctx.book.pool(
        crng, [hosting[int(j)] for j in crng.choice(len(hosting), 3, False)], p["proxy_ips"]
    )
    ua = ctx.uas.add(SCRIPT_USER_AGENTS[int(crng.integers(len(SCRIPT_USER_AGENTS)))])
    windows = controller_windows(crng, ctx.start, ctx.end, tuple(p["window_gap_h"]))
    queue = ContentQueue(ctx, crng, p["sources"])
    wording = Wording(ctx, p["reasoning"])
    per_window = p["per_account_daily"] / (_windows_per_day(p) * p["participation"])
    plans = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group)
        ts = window_activity(
            rng,
            windows,
            p["window_minutes"],
            p["participation"],
            per_window,
            p["gap_median_s"],
            ctx.start,
            ctx.end,
        )
        ev = Events(ts)
        role = _roles(rng, ev.n, p["mundane_share"])
        asks = _word(ev, rng, role, wording)
        fill_cover(ctx, rng, ev, role, HUMAN_SOURCES)
        ev.put("model", ctx.flagship)
        ev.put("ip", proxy[rng.integers(0, len(proxy), size=ev.n)])
        ev.put("ua", ua)
        sdk_defaults(rng, ev, p["stream_share"])
        plans.append(Plan(acct, ev, rng, role, asks))
    hand_out(queue, plans)
    reword_bare(ctx, plans)
    return complete(ctx, plans, p)


# -- mimicry family ---------------------------------------------------------------------------

#: Benchmark formatting as evaluation harnesses write it for chain-of-thought runs
#: (lm-eval-harness style): the reasoning is asked for in the benchmark's own words.
HARNESS_TEMPLATES = (
    "Question: {p}\nLet's think step by step.",
    "Q: {p}\nA: Let's think step by step.",
    "Problem: {p}\nSolution: Let's think step by step.",
    "{p}\nAnswer: Let's think step by step.",
    "Input: {p}\nOutput: Let's think step by step.",
    "### Question\n{p}\n### Answer\nLet's think step by step.",
)


def eval_mimic(ctx: Context, group: Group, _rng: np.random.Generator) -> Generated:
    """Dodges volume, persistence and harvest-parameter suspicion by looking like an
    evaluation harness: one run a day in a burst, temperature 0, benchmark formatting,
    a harness user agent, cloud and university addresses, some runs with logprobs.

    Trace: a benchmark is a fixed set and harnesses re-run it; the mimic's "benchmark" is
    new every day (never a repeat across runs), drawn from instruction sets rather than
    a benchmark, and its answers run long (max_tokens well above a benchmark's).
    """
    p = group.params
    crng = _campaign_rng(ctx, group)
    queue = ContentQueue(ctx, crng, p["sources"])
    harness = [ctx.wrap(t) for t in HARNESS_TEMPLATES]
    first: list[int] = []
    plans = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group)
        pool = ctx.book.pool(rng, as_by_kind("cloud")[:1] + as_by_kind("university")[:1], 2)
        tz = float(choose(rng, [-6.0, 1.0, 9.0], 1)[0])
        runs = max(1, int(rng.poisson(p["runs_per_day"] * ctx.scenario.days)))
        starts = poisson_times(rng, ctx, runs, hour_weights(ctx, WORK, tz, 0.3))
        chunks = [
            s
            + np.cumsum(
                rng.exponential(
                    p["gap_mean_s"], size=int(rng.integers(p["run_min"], p["run_max"] + 1))
                )
            )
            for s in starts
        ]
        ts = np.sort(np.concatenate(chunks))
        ev = Events(ts[ts < ctx.end])
        role = np.full(ev.n, HARVEST, dtype=np.int8)
        first.append(int(rng.integers(len(harness))))
        ev.put("wrap", harness[first[-1]])
        asks = np.ones(ev.n, dtype=bool)
        ev.put("model", ctx.flagship)
        ev.put("ip", pool[rng.integers(0, len(pool), size=ev.n)])
        ua = choose(rng, ["lm-eval-harness/0.4.5", "openai-python/1.54.3"], 1, [0.7, 0.3])[0]
        ev.put("ua", ctx.uas.add(str(ua)))
        ev.put("temperature", 0.0)
        ev.put("max_tokens", p["max_tokens"])
        if rng.random() < p["logprobs_fraction"]:
            ev.put("logprobs", True)
            ev.put("top_logprobs", 5)
        ev.put("stream", False)
        plans.append(Plan(acct, ev, rng, role, asks))
    hand_out(queue, plans)
    rotate_wraps(plans, harness, np.asarray(first, dtype=np.int64))
    return complete(ctx, plans, p)


# -- regime family ----------------------------------------------------------------------------


def warmup_harvester(ctx: Context, group: Group, _rng: np.random.Generator) -> Generated:
    """Dodges new-account and cohort evidence: accounts created over days and used as
    ordinary people for a day or more (evening sessions, human prompts, streaming), then
    switched to harvesting at the operator's go time.

    Trace: the change of regime -- after ``harvest_start`` (in the labels) prompts come
    from instruction sets, ask for reasoning in the campaign template, run day and night
    at many times the warm-up rate, with long outputs -- and the accounts switch within
    hours of each other.
    """
    p = group.params
    crng = _campaign_rng(ctx, group)
    wraps = _campaign_wraps(ctx, crng, p["templates"])
    queue = ContentQueue(ctx, crng, p["sources"])
    go = ctx.start + p["go_after_days"] * DAY + float(crng.uniform(0, 6)) * HOUR
    plans = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group)
        ip, tz = sticky_home(ctx, rng)
        born = ctx.start + float(rng.uniform(0, p["stagger_days"])) * DAY
        switch = max(
            go + float(rng.normal(0.0, p["switch_spread_h"])) * HOUR,
            born + p["warmup_min_days"] * DAY,
        )
        acct.harvest_start = switch
        warm = warm_up(
            ctx,
            rng,
            born,
            switch,
            sessions_per_day=p["warmup_sessions_per_day"],
            profile=EVENING,
            tz=tz,
        )
        daily = p["harvest_daily"] * float(rng.lognormal(0, 0.3))
        w = restricted_weights(ctx, FLAT, tz, 1.0, switch, ctx.end)
        n = int(rng.poisson(daily * max(0.0, ctx.end - switch) / DAY)) if w.sum() else 0
        harvest = poisson_times(rng, ctx, n, w) if n else np.empty(0)
        harvest = harvest[harvest >= switch]
        cover, work = Events(warm), Events(harvest)
        ev, phase = merge([cover, work])
        role = np.where(phase == 0, HUMAN, _roles(rng, ev.n, p["mundane_share"])).astype(np.int8)
        asks = _templated(ev, rng, role, wraps)
        fill_cover(ctx, rng, ev, role, HUMAN_SOURCES)
        ev.put("model", ctx.flagship)
        ev.put("ip", ip)
        ev.put("ua", ctx.uas.add(vendor_user_agent(rng)))
        temp = np.where(phase == 0, choose(rng, [np.nan, 0.7, 1.0], ev.n), p["temperature"])
        ev.put("temperature", temp)
        ev.put("max_tokens", np.where(phase == 0, 2048, p["max_tokens"]))
        ev.put("stream", phase == 0)
        plans.append(Plan(acct, ev, rng, role, asks))
    hand_out(queue, plans)
    rotate_wraps(plans, _rotation(ctx, wraps), np.zeros(len(plans), dtype=np.int64))
    return complete(ctx, plans, p)


def patient_pivot(ctx: Context, group: Group, _rng: np.random.Generator) -> Generated:
    """Dodges the model-release pivot: moves only part of its traffic to the new model,
    a day or so after the release, like honest adopters do; human-paced sessions,
    SDK defaults, free wording.

    Trace: the campaign's accounts all adopt within minutes of one another (one operator
    pushes one configuration change), where honest adopters spread over days.
    """
    p = group.params
    if ctx.release is None:
        raise ValueError(f"campaign {group.campaign}: patient_pivot needs a released model")
    crng = _campaign_rng(ctx, group)
    queue = ContentQueue(ctx, crng, p["sources"])
    wording = Wording(ctx, p["reasoning"])
    rel_idx, rel_ts = ctx.release
    push = rel_ts + float(crng.uniform(*p["adopt_after_h"])) * HOUR
    plans = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group)
        ip, tz = sticky_home(ctx, rng)
        ts = human_sessions(
            ctx,
            rng,
            ctx.start,
            ctx.end,
            sessions_per_day=p["daily_requests"] / p["session_len"],
            profile=np.maximum(WORK, EVENING * 0.7),
            tz=tz,
            session_len=p["session_len"],
            gap_median_s=p["gap_median_s"],
        )
        ev = Events(ts)
        role = _roles(rng, ev.n, p["mundane_share"])
        asks = _word(ev, rng, role, wording)
        fill_cover(ctx, rng, ev, role, HUMAN_SOURCES)
        adopt = push + float(rng.normal(0.0, p["adopt_spread_min"])) * 60.0
        moved = (ev.ts >= adopt) & (rng.random(ev.n) < p["adopt_share"])
        ev.put("model", np.where(moved, rel_idx, ctx.flagship))
        ev.put("ip", ip)
        ev.put("ua", ctx.uas.add(vendor_user_agent(rng)))
        sdk_defaults(rng, ev, p["stream_share"])
        plans.append(Plan(acct, ev, rng, role, asks))
    hand_out(queue, plans)
    reword_bare(ctx, plans)
    return complete(ctx, plans, p)


# -- timing family ----------------------------------------------------------------------------


def careful_single(ctx: Context, group: Group, _rng: np.random.Generator) -> Generated:
    """Single accounts that pass for a heavy human user: sessions with think time in the
    account's own waking hours, two thirds of prompts ordinary questions, streaming on,
    SDK or browser agent, one home address, SDK defaults, free wording.

    Trace: a controller's quota -- the same number of requests every day (a person's
    days vary far more) -- and the harvested third: instruction-set items never repeated,
    with long answers.
    """
    p = group.params
    crng = _campaign_rng(ctx, group)
    queue = ContentQueue(ctx, crng, p["sources"])
    wording = Wording(ctx, p["reasoning"])
    profile = np.maximum(WORK, EVENING)
    plans = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group)
        ip, tz = sticky_home(ctx, rng)
        quota = p["daily_requests"] * float(rng.uniform(0.8, 1.2))
        chunks = []
        for day in range(int(np.ceil(ctx.scenario.days))):
            lo = ctx.start + day * DAY
            hi = min(ctx.end, lo + DAY)
            target = round(quota * (1 + float(rng.uniform(-1, 1)) * p["quota_jitter"]))
            w = restricted_weights(ctx, profile, tz, 1.0, lo, hi)
            got: list[np.ndarray] = []
            while w.sum() > 0 and sum(len(g) for g in got) < target:
                start = poisson_times(rng, ctx, 1, w)[0]
                k = int(rng.geometric(1.0 / p["session_len"]))
                gaps = rng.lognormal(np.log(p["gap_median_s"]), 0.8, size=k)
                gaps[0] = 0.0
                got.append(start + np.cumsum(gaps))
            day_ts = np.sort(np.concatenate(got))[:target] if got else np.empty(0)
            chunks.append(day_ts[day_ts < ctx.end])
        ev = Events(np.sort(np.concatenate(chunks)))
        role = np.where(rng.random(ev.n) < p["mundane_share"], HUMAN, HARVEST).astype(np.int8)
        asks = _word(ev, rng, role, wording)
        fill_cover(ctx, rng, ev, role, HUMAN_SOURCES)
        ev.put("model", ctx.flagship)
        ev.put("ip", ip)
        uas = [vendor_user_agent(rng), *_BROWSERS]
        ev.put("ua", ctx.uas.add(str(choose(rng, uas, 1)[0])))
        sdk_defaults(rng, ev, p["stream_share"])
        plans.append(Plan(acct, ev, rng, role, asks))
    hand_out(queue, plans)
    reword_bare(ctx, plans)
    return complete(ctx, plans, p)


_BROWSERS = ["Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15"]


def recorded_timing(ctx: Context, group: Group, _rng: np.random.Generator) -> Generated:
    """A fleet that passes for people one by one: every account replays the timing of one
    recorded person (sessions, think time, nights), each from its own point of the
    recording and its own start time, so no two accounts are active together and no
    clock is shared; a card and a sticky home address each in one large ISP, SDK agents,
    free wording, SDK defaults.

    Trace: the shared inter-arrival sequence -- any account's run of consecutive gaps
    between requests recurs, to network jitter, in its siblings' -- and one content
    dispatcher's sweep.
    """
    p = group.params
    crng = _campaign_rng(ctx, group)
    queue = ContentQueue(ctx, crng, p["sources"])
    wording = Wording(ctx, p["reasoning"])
    span = ctx.end - ctx.start
    recorded = human_sessions(
        ctx,
        crng,
        ctx.start,
        ctx.start + p["record_days"] * DAY,
        sessions_per_day=p["sessions_per_day"],
        profile=EVENING,
        tz=float(p["operator_tz"]),
        session_len=p["session_len"],
        gap_median_s=p["gap_median_s"],
    )
    gaps = np.diff(np.sort(recorded))
    if len(gaps) == 0:
        return []
    plans = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group)
        ip, _ = sticky_home(ctx, rng, p["asn"])
        born = ctx.start + float(rng.uniform(0, p["stagger_days"])) * DAY
        # the recording from a point of its own, looped as often as the scenario needs
        rolled = np.roll(gaps, -int(rng.integers(len(gaps))))
        loops = int(np.ceil(span / max(float(gaps.sum()), 1.0))) + 1
        steps = np.tile(rolled, loops)
        ts = born + np.r_[0.0, np.cumsum(steps)]
        ts = ts + rng.normal(0.0, p["jitter_s"], size=len(ts))
        ev = Events(np.sort(ts[(ts >= ctx.start) & (ts < ctx.end)]))
        role = _roles(rng, ev.n, p["mundane_share"])
        asks = _word(ev, rng, role, wording)
        fill_cover(ctx, rng, ev, role, HUMAN_SOURCES)
        ev.put("model", ctx.flagship)
        ev.put("ip", ip)
        ev.put("ua", ctx.uas.add(vendor_user_agent(rng)))
        sdk_defaults(rng, ev, p["stream_share"])
        plans.append(Plan(acct, ev, rng, role, asks))
    hand_out(queue, plans)
    reword_bare(ctx, plans)
    return complete(ctx, plans, p)


# -- swarm family -----------------------------------------------------------------------------


def swarm(ctx: Context, group: Group, _rng: np.random.Generator) -> Generated:
    """Hundreds to thousands of accounts at 3-10 requests a day each, every one with its
    own card, home address and SDK agent, activated on different days, no template.

    Each account keeps a daily quota in [daily_min, daily_max]; no account is above any
    per-account threshold. Trace: one scheduler drives the fleet -- most requests leave on
    its ticks (period ``tick_s``, which does not divide a day), so across the swarm
    requests bunch into the same minutes far more than independent users' would; and one
    dispatcher's content sweep (no item sent by two accounts).
    """
    p = group.params
    crng = _campaign_rng(ctx, group)
    queue = ContentQueue(ctx, crng, p["sources"])
    wording = Wording(ctx, p["reasoning"])
    ticks = tick_grid(ctx.start, ctx.end, p["tick_s"], float(crng.uniform(0, p["tick_s"])))
    op_tz = float(p["operator_tz"])
    tick_w = hour_weights(ctx, CONSUMER, op_tz)[
        np.clip(((ticks - ctx.start) // HOUR).astype(np.int64), 0, ctx.hours - 1)
    ]
    days = int(np.ceil(ctx.scenario.days))
    plans = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group)
        ip, _ = sticky_home(ctx, rng)
        first_day = int(rng.integers(0, max(1, min(p["stagger_days"], days - 1)) + 1))
        rate = float(rng.uniform(p["daily_min"], p["daily_max"]))
        chunks = []
        for day in range(first_day, days):
            lo = ctx.start + day * DAY
            hi = min(ctx.end, lo + DAY)
            if hi - lo < DAY:
                break  # a partial last day would break the daily quota
            k = int(np.clip(rng.poisson(rate), p["daily_min"], p["daily_max"]))
            on_tick = int(rng.binomial(k, 1.0 - p["off_tick_share"]))
            sel = (ticks >= lo) & (ticks < hi)
            day_ticks, w = ticks[sel], tick_w[sel]
            picked = rng.choice(len(day_ticks), size=on_tick, replace=False, p=w / w.sum())
            t_on = day_ticks[picked] + rng.normal(0.0, p["tick_jitter_s"], size=on_tick)
            t_off = lo + rng.random(k - on_tick) * DAY
            chunks.append(np.clip(np.concatenate([t_on, t_off]), lo, hi - 0.01))
        ts = np.sort(np.concatenate(chunks)) if chunks else np.empty(0)
        ev = Events(ts)
        role = _roles(rng, ev.n, p["mundane_share"])
        asks = _word(ev, rng, role, wording)
        fill_cover(ctx, rng, ev, role, HUMAN_SOURCES)
        ev.put("model", ctx.flagship)
        ev.put("ip", ip)
        ev.put("ua", ctx.uas.add(vendor_user_agent(rng)))
        sdk_defaults(rng, ev, p["stream_share"])
        plans.append(Plan(acct, ev, rng, role, asks))
    borrow_from_honest(ctx, group, plans, p["borrowed_home_share"], p["borrowed_card_share"])
    hand_out(queue, plans)
    reword_bare(ctx, plans)
    return complete(ctx, plans, p)


# -- composite family -------------------------------------------------------------------------


def stealth_fleet(ctx: Context, group: Group, _rng: np.random.Generator) -> Generated:
    """Every cheap dodge at once: accounts created over days, warmed up as people for a
    day or more, then harvesting at a few dozen requests a day, a card and one sticky
    home address each inside one large residential ISP, vendor SDK agents, free wording
    with reasoning asked sometimes, SDK defaults, streaming on, a third mundane.

    Traces: the change of regime at ``harvest_start``; the controller's irregular
    windows during harvest (loose synchrony with the rest of the fleet, not with the
    time of day); one content sweep.
    """
    p = group.params
    crng = _campaign_rng(ctx, group)
    windows = controller_windows(crng, ctx.start, ctx.end, tuple(p["window_gap_h"]))
    queue = ContentQueue(ctx, crng, p["sources"])
    wording = Wording(ctx, p["reasoning"])
    per_window = p["per_account_daily"] / (_windows_per_day(p) * p["participation"])
    plans = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group)
        ip, tz = sticky_home(ctx, rng, p["asn"])
        born = ctx.start + float(rng.uniform(0, p["stagger_days"])) * DAY
        switch = born + float(rng.uniform(p["warmup_min_days"], p["warmup_max_days"])) * DAY
        acct.harvest_start = switch
        warm = warm_up(
            ctx,
            rng,
            born,
            switch,
            sessions_per_day=p["warmup_sessions_per_day"],
            profile=EVENING,
            tz=tz,
        )
        work = window_activity(
            rng,
            windows,
            p["window_minutes"],
            p["participation"],
            per_window,
            p["gap_median_s"],
            switch,
            ctx.end,
        )
        ev, phase = merge([Events(warm), Events(work)])
        role = np.where(phase == 0, HUMAN, _roles(rng, ev.n, p["mundane_share"])).astype(np.int8)
        asks = _word(ev, rng, role, wording)
        fill_cover(ctx, rng, ev, role, HUMAN_SOURCES)
        ev.put("model", ctx.flagship)
        ev.put("ip", ip)
        ev.put("ua", ctx.uas.add(vendor_user_agent(rng)))
        sdk_defaults(rng, ev, p["stream_share"])
        plans.append(Plan(acct, ev, rng, role, asks))
    hand_out(queue, plans)
    reword_bare(ctx, plans)
    return complete(ctx, plans, p)


# -- registry ---------------------------------------------------------------------------------

_HARVEST: dict[str, Any] = {
    "sources": ["codegen", "toolformer"],
    "verbosity": 1.5,
    "reasoning_chars": 2400.0,
}
_WINDOWS: dict[str, Any] = {
    "window_gap_h": [2.5, 4.5],
    "window_minutes": 45.0,
    "participation": 0.6,
    "gap_median_s": 50.0,
}

#: Variant -> family (leave-one-family-out folds hold families out; configs/protocol.yaml).
FAMILY: dict[str, str] = {
    "residential_fleet": "infrastructure",
    "free_form_hydra": "content",
    "eval_mimic": "mimicry",
    "warmup_harvester": "regime",
    "patient_pivot": "regime",
    "careful_single": "timing",
    "recorded_timing": "timing",
    "swarm": "swarm",
    "stealth_fleet": "composite",
}

ADVERSARIES: dict[str, Archetype] = {
    a.name: a
    for a in (
        Archetype(
            "residential_fleet",
            "distiller",
            {
                **_HARVEST,
                **_WINDOWS,
                "per_account_daily": 30.0,
                "stagger_days": 1.5,
                "asn": 7922,
                "templates": 1,
                "mundane_share": 0.25,
                "borrowed_home_share": 0.0,
                "borrowed_card_share": 0.0,
                "temperature": 0.0,
                "max_tokens": 8192,
            },
            residential_fleet,
            "a card and a sticky home address each in one big ISP; classic harvest",
        ),
        Archetype(
            "free_form_hydra",
            "distiller",
            {
                **_HARVEST,
                **_WINDOWS,
                "window_gap_h": [3.0, 5.0],
                "window_minutes": 20.0,
                "participation": 0.5,
                "per_account_daily": 6.0,
                "proxy_ips": 40,
                "reasoning": "free",
                "mundane_share": 0.3,
                "stream_share": 0.3,
            },
            free_form_hydra,
            "a proxy-pool hydra with no template and reasoning asked in free words",
        ),
        Archetype(
            "eval_mimic",
            "distiller",
            {
                **_HARVEST,
                "verbosity": 1.3,
                "reasoning_chars": 1800.0,
                "runs_per_day": 1.0,
                "run_min": 150,
                "run_max": 500,
                "gap_mean_s": 0.6,
                "max_tokens": 2048,
                "logprobs_fraction": 0.35,
            },
            eval_mimic,
            "looks like a benchmark harness; the benchmark never repeats",
        ),
        Archetype(
            "warmup_harvester",
            "distiller",
            {
                **_HARVEST,
                "stagger_days": 1.0,
                "warmup_min_days": 1.0,
                "go_after_days": 2.0,
                "switch_spread_h": 2.0,
                "warmup_sessions_per_day": 1.5,
                "harvest_daily": 300.0,
                "templates": 1,
                "mundane_share": 0.1,
                "temperature": 0.0,
                "max_tokens": 8192,
            },
            warmup_harvester,
            "ordinary user for a day or more, then a harvester",
        ),
        Archetype(
            "patient_pivot",
            "distiller",
            {
                **_HARVEST,
                "daily_requests": 150.0,
                "session_len": 10.0,
                "gap_median_s": 25.0,
                "mundane_share": 0.3,
                "reasoning": "mixed",
                "adopt_after_h": [10.0, 30.0],
                "adopt_spread_min": 15.0,
                "adopt_share": 0.6,
                "stream_share": 0.5,
            },
            patient_pivot,
            "adopts a new model like an honest user, all accounts at once",
        ),
        Archetype(
            "careful_single",
            "distiller",
            {
                **_HARVEST,
                "daily_requests": 150.0,
                "quota_jitter": 0.03,
                "session_len": 8.0,
                "gap_median_s": 60.0,
                "mundane_share": 0.65,
                "reasoning": "mixed",
                "stream_share": 1.0,
            },
            careful_single,
            "one account with human timing, heavy dilution and streaming",
        ),
        Archetype(
            "recorded_timing",
            "distiller",
            {
                **_HARVEST,
                "record_days": 2.0,
                "sessions_per_day": 3.0,
                "session_len": 10.0,
                "gap_median_s": 40.0,
                "jitter_s": 0.3,
                "stagger_days": 1.0,
                "operator_tz": 2.0,
                "asn": 7922,
                "mundane_share": 0.3,
                "reasoning": "mixed",
                "stream_share": 0.5,
            },
            recorded_timing,
            "a fleet of people-like accounts replaying one recorded person's timing",
        ),
        Archetype(
            "swarm",
            "distiller",
            {
                **_HARVEST,
                "daily_min": 3,
                "daily_max": 10,
                "stagger_days": 1,
                "tick_s": 431.0,
                "tick_jitter_s": 30.0,
                "off_tick_share": 0.25,
                "borrowed_home_share": 0.0,
                "borrowed_card_share": 0.0,
                "operator_tz": -6.0,
                "mundane_share": 0.3,
                "reasoning": "mixed",
                "stream_share": 0.5,
            },
            swarm,
            "thousands of accounts at 3-10 requests a day, one scheduler",
        ),
        Archetype(
            "stealth_fleet",
            "distiller",
            {
                **_HARVEST,
                **_WINDOWS,
                "window_minutes": 50.0,
                "participation": 0.5,
                "per_account_daily": 30.0,
                "stagger_days": 1.5,
                "warmup_min_days": 1.0,
                "warmup_max_days": 1.5,
                "warmup_sessions_per_day": 1.5,
                "asn": 7922,
                "reasoning": "mixed",
                "mundane_share": 0.3,
                "stream_share": 0.7,
            },
            stealth_fleet,
            "every cheap dodge at once",
        ),
    )
}
