"""Benign archetypes: honest traffic, including the hard negatives a detector must spare.

Every archetype has its own volume, daily rhythm, inter-arrival behaviour, request
parameters, infrastructure and prompt sources (human-written prompts and benchmarks;
Self-Instruct seeds are human text in instruction-set style, so content alone cannot
separate them from distillers). Defaults below are per account; a scenario overrides
any of them by name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillguard.sim.network import (
    BROWSER_USER_AGENTS,
    IDE_USER_AGENTS,
    SDK_USER_AGENTS,
    TZ_BY_COUNTRY,
    as_by_kind,
)
from distillguard.sim.traffic import (
    DAY,
    HOUR,
    Account,
    Archetype,
    Context,
    Events,
    Group,
    adoption_time,
    assign_models,
    choose,
    finish,
    group_rng,
    hour_weights,
    lognormal_volume,
    poisson_times,
    session_times,
)

# Local-time activity by hour, 0..23.
EVENING = np.array(
    [
        0.3,
        0.2,
        0.1,
        0.05,
        0.05,
        0.05,
        0.1,
        0.3,
        0.5,
        0.6,
        0.6,
        0.7,
        0.8,
        0.7,
        0.7,
        0.7,
        0.8,
        0.9,
        1.0,
        1.0,
        1.0,
        0.9,
        0.7,
        0.5,
    ]
)
WORK = np.array(
    [
        0.02,
        0.02,
        0.02,
        0.02,
        0.02,
        0.02,
        0.05,
        0.2,
        0.7,
        1.0,
        1.0,
        1.0,
        0.6,
        0.9,
        1.0,
        1.0,
        0.9,
        0.7,
        0.4,
        0.2,
        0.1,
        0.05,
        0.03,
        0.02,
    ]
)
CONSUMER = np.array(
    [
        0.35,
        0.3,
        0.25,
        0.22,
        0.22,
        0.25,
        0.35,
        0.5,
        0.65,
        0.75,
        0.8,
        0.85,
        0.9,
        0.9,
        0.9,
        0.9,
        0.9,
        0.95,
        1.0,
        1.0,
        1.0,
        0.9,
        0.7,
        0.5,
    ]
)
FLAT = np.array(
    [
        0.75,
        0.72,
        0.7,
        0.7,
        0.7,
        0.72,
        0.78,
        0.85,
        0.92,
        0.97,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        0.98,
        0.95,
        0.92,
        0.9,
        0.88,
        0.84,
        0.8,
    ]
)
CAMPUS = np.maximum(WORK, EVENING * 0.8)

POPULAR_SYSTEM_PROMPT = "You are a helpful assistant."
CHAT_SYSTEM_PROMPTS = (
    "You are Ava, the friendly support assistant of a consumer banking app. Answer briefly, "
    "never give financial advice, and escalate account problems to a human agent.",
    "You are a study buddy for high-school students. Explain simply and encourage them.",
    "You are the concierge of a travel booking site. Be concise and suggest options.",
)
IDE_SYSTEM_PROMPT = (
    "You are a coding assistant inside the user's editor. You can read files, run tests "
    "and propose edits through the provided tools. Prefer small, reviewable changes."
)
AGENT_SYSTEM_PROMPT = (
    "You are {name}, the autonomous {domain} agent of {company}. Plan, call tools to gather "
    "information, act, and report back. Think before each tool call, stop when the task is "
    "done, and never perform irreversible actions without confirmation."
)
COMPANY_WORDS = (
    "Blue",
    "River",
    "North",
    "Peak",
    "Harbor",
    "Cedar",
    "Summit",
    "Vector",
    "Lumen",
    "Granite",
    "Meadow",
    "Signal",
)
AGENT_NAMES = ("Atlas", "Nova", "Pilot", "Sage", "Orbit", "Relay", "Quill", "Beacon")
AGENT_DOMAINS = (
    "operations",
    "customer-support",
    "data-analysis",
    "travel",
    "IT helpdesk",
    "sales",
    "research",
    "procurement",
)
IDE_TEMPLATES = (
    "I'm working in src/app/handlers.py. {p}",
    "Context: the failing test is tests/test_api.py::test_create.\n\n{p}",
    "{p}\n\n(Answer with a code block I can paste.)",
)
AGENT_TEMPLATES = ("User task: {p}", "New ticket from a customer: {p}\nResolve it.")
BATCH_TEMPLATES = (
    "Classify the following customer message into exactly one of: billing, shipping, "
    "returns, account, other. Reply with the label only.\n\nMessage: {p}",
    "Extract every named entity (person, organisation, place, date) from the text below as "
    "a JSON list.\n\nText: {p}",
    "Translate into German. Output only the translation.\n\n{p}",
)
EVAL_TEMPLATES = (
    "Solve the following math problem. Put the final answer after ####.\n\nQuestion: {p}\nAnswer:",
    "Question: {p}\nLet's think step by step.",
)
RESEARCH_TEMPLATES = (
    "{p}\n\nLet's think step by step.",
    "Explain your reasoning step by step, then give the final answer.\n\n{p}",
    "{p}\nShow your work.",
    "{p}",
)
COMMON: dict[str, Any] = {
    "redacted_fraction": 0.03,
    "mini_share": 0.3,
    "adopt_probability": 0.3,
    "adopt_delay_h": 36.0,
}


def _home(ctx: Context, rng: np.random.Generator, kind: str = "residential") -> tuple[int, float]:
    systems = as_by_kind(kind)
    asys = systems[int(rng.integers(len(systems)))]
    return ctx.book.random(rng, asys), TZ_BY_COUNTRY.get(asys.country, 0.0)


def _account(
    ctx: Context,
    group: Group,
    rng: np.random.Generator,
    *,
    endpoint: str | None = None,
    org: str | None = None,
    payment: str | None = None,
    keys: int = 1,
) -> Account:
    return Account(
        account_id=ctx.new_id("acct"),
        archetype=group.archetype,
        label="benign",
        campaign=None,
        org_id=org or ctx.new_id("org"),
        payment=payment or ctx.new_id("pf"),
        endpoint=endpoint
        or str(choose(rng, ["/v1/messages", "/v1/chat/completions"], 1, [0.7, 0.3])[0]),
        redacted=bool(rng.random() < group.params["redacted_fraction"]),
        keys=keys,
    )


def _models(
    ctx: Context, rng: np.random.Generator, p: dict[str, Any], ts: np.ndarray
) -> np.ndarray:
    adopt = adoption_time(rng, ctx, p["adopt_probability"], p["adopt_delay_h"])
    # Accounts differ in how much they use the cheaper model; many never do.
    mini = min(1.0, p["mini_share"] * float(rng.choice([0.0, 0.0, 0.5, 1.0, 1.5, 2.0])))
    return assign_models(
        ctx, rng, ts, mini_share=mini, adopt_at=adopt, adopt_share=float(rng.uniform(0.3, 0.9))
    )


def _human_session_account(
    ctx: Context,
    group: Group,
    i: int,
    *,
    profile: np.ndarray,
    weekend: float,
    ip_pool: np.ndarray | None = None,
    tz: float | None = None,
    org: str | None = None,
    payment: str | None = None,
    uas: tuple[str, ...] = SDK_USER_AGENTS + BROWSER_USER_AGENTS,
) -> tuple[Account, Events]:
    """A person typing: sessions of a few prompts with think time between them."""
    p = group.params
    rng = group_rng(ctx, group, i)
    acct = _account(ctx, group, rng, org=org, payment=payment)
    if ip_pool is None:
        ip, home_tz = _home(ctx, rng)
        ips = np.asarray([ip], dtype=np.int32)
        tz = home_tz if tz is None else tz
    else:
        ips = ip_pool
        tz = 0.0 if tz is None else tz
    per_day = lognormal_volume(rng, p["sessions_per_day"], p["sigma"])
    sessions = int(rng.poisson(per_day * ctx.scenario.days))
    ts = session_times(
        rng,
        ctx,
        sessions,
        hour_weights(ctx, profile, tz, weekend),
        p["session_len"],
        p["gap_median_s"],
    )
    ev = Events(ts)
    ev.put("text", ctx.pick_mix(rng, p["sources"], ev.n))
    ev.put("model", _models(ctx, rng, p, ts))
    ev.put("ip", ips[rng.integers(0, len(ips), size=ev.n)])
    ev.put("ua", ctx.uas.add(uas[int(rng.integers(len(uas)))]))
    if rng.random() < 0.2:
        ev.put("system", ctx.systems.add(POPULAR_SYSTEM_PROMPT))
    ev.put("temperature", choose(rng, [np.nan, 0.7, 1.0], ev.n, [0.5, 0.3, 0.2]))
    ev.put("max_tokens", int(choose(rng, [1024, 2048, 4096], 1)[0]))
    ev.put("stream", rng.random() < 0.7)
    if p.get("tool_share", 0) > 0:
        tools = np.where(rng.random(ev.n) < p["tool_share"], rng.integers(2, 9), -1)
        ev.put("tool_count", tools)
    return acct, finish(ctx, ev, rng, fallback_response_chars=500.0)


def hobbyists(
    ctx: Context, group: Group, _rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    return [
        _human_session_account(ctx, group, i, profile=EVENING, weekend=1.3)
        for i in range(group.accounts)
    ]


def campus_nat(
    ctx: Context, group: Group, rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    """Students and staff behind one university NAT: a few shared addresses, one AS."""
    p = group.params
    systems = as_by_kind("university")
    asys = systems[int(rng.integers(len(systems)))]
    pool = ctx.book.pool(rng, [asys], p["nat_ips"])
    tz = TZ_BY_COUNTRY.get(asys.country, 0.0)
    return [
        _human_session_account(ctx, group, i, profile=CAMPUS, weekend=0.6, ip_pool=pool, tz=tz)
        for i in range(group.accounts)
    ]


def corporate_nat(
    ctx: Context, group: Group, rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    """Employees of one company: shared egress, one org and one company card, office hours."""
    p = group.params
    systems = as_by_kind("corporate")
    asys = systems[int(rng.integers(len(systems)))]
    pool = ctx.book.pool(rng, [asys], p["nat_ips"])
    org, card = ctx.new_id("org"), ctx.new_id("pf")
    return [
        _human_session_account(
            ctx,
            group,
            i,
            profile=WORK,
            weekend=0.1,
            ip_pool=pool,
            tz=TZ_BY_COUNTRY.get(asys.country, 0.0),
            org=org,
            payment=card,
            uas=SDK_USER_AGENTS + IDE_USER_AGENTS,
        )
        for i in range(group.accounts)
    ]


def chat_backends(
    ctx: Context, group: Group, _rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    """An app's server relaying many end users: Poisson arrivals, one system prompt, history."""
    p = group.params
    out = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _account(ctx, group, rng, keys=int(rng.integers(2, 5)))
        ips = ctx.book.pool(
            rng, as_by_kind("cloud")[: 1 + int(rng.integers(2))], int(rng.integers(2, 5))
        )
        tz = float(choose(rng, [-6.0, 1.0, 9.0, 5.5], 1)[0])
        n = int(
            rng.poisson(lognormal_volume(rng, p["daily_requests"], p["sigma"]) * ctx.scenario.days)
        )
        ts = poisson_times(rng, ctx, n, hour_weights(ctx, CONSUMER, tz, 1.1))
        ev = Events(ts)
        ev.put("text", ctx.pick_mix(rng, p["sources"], ev.n))
        ev.put("model", _models(ctx, rng, p, ts))
        ev.put("ip", ips[rng.integers(0, len(ips), size=ev.n)])
        ev.put("key", rng.integers(0, acct.keys, size=ev.n))
        ev.put("ua", ctx.uas.add(SDK_USER_AGENTS[int(rng.integers(len(SDK_USER_AGENTS)))]))
        system = (
            POPULAR_SYSTEM_PROMPT
            if rng.random() < 0.4
            else CHAT_SYSTEM_PROMPTS[int(rng.integers(len(CHAT_SYSTEM_PROMPTS)))]
        )
        ev.put("system", ctx.systems.add(system))
        ev.put("temperature", 0.7)
        ev.put("max_tokens", 1024)
        ev.put("stream", True)
        history = rng.lognormal(np.log(400), 0.9, size=ev.n).astype(np.int64)
        out.append(
            (acct, finish(ctx, ev, rng, context_tokens=history, fallback_response_chars=700.0))
        )
    return out


def coding_assistants(
    ctx: Context, group: Group, _rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    """Editor plug-ins: office hours, quick tool loops, declared tools, long file context."""
    p = group.params
    out = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _account(ctx, group, rng, endpoint="/v1/messages")
        ip, tz = _home(ctx, rng, "residential" if rng.random() < 0.6 else "corporate")
        per_day = lognormal_volume(rng, p["sessions_per_day"], p["sigma"])
        ts = session_times(
            rng,
            ctx,
            int(rng.poisson(per_day * ctx.scenario.days)),
            hour_weights(ctx, WORK, tz, 0.15),
            p["session_len"],
            p["gap_median_s"],
            1.0,
        )
        ev = Events(ts)
        ev.put("text", ctx.pick_mix(rng, p["sources"], ev.n))
        wraps = [ctx.wrap(t) for t in IDE_TEMPLATES] + [0]
        ev.put("wrap", choose(rng, wraps, ev.n))
        ev.put("model", _models(ctx, rng, p, ts))
        ev.put("ip", ip)
        ev.put("ua", ctx.uas.add(IDE_USER_AGENTS[int(rng.integers(len(IDE_USER_AGENTS)))]))
        ev.put("system", ctx.systems.add(IDE_SYSTEM_PROMPT))
        ev.put("tool_count", int(rng.integers(4, 17)))
        ev.put("temperature", float(choose(rng, [0.0, 0.2], 1)[0]))
        ev.put("max_tokens", int(choose(rng, [4096, 8192], 1)[0]))
        ev.put("stream", True)
        ctx_tokens = rng.lognormal(np.log(3000), 0.7, size=ev.n).astype(np.int64)
        out.append((acct, finish(ctx, ev, rng, context_tokens=ctx_tokens, verbosity=1.5)))
    return out


def enterprise_batch(
    ctx: Context, group: Group, _rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    """Nightly jobs: huge, templated, narrow (one template, one slice of text), temperature 0."""
    p = group.params
    out = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _account(ctx, group, rng, endpoint="/v1/messages")
        ips = ctx.book.pool(rng, as_by_kind("cloud")[:1], int(rng.integers(1, 3)))
        daily = lognormal_volume(rng, p["daily_requests"], p["sigma"])
        window_start = float(rng.uniform(0, 5)) * HOUR
        window = p["window_hours"] * HOUR
        chunks = []
        for day in range(int(np.ceil(ctx.scenario.days))):
            begin = ctx.start + day * DAY + window_start
            n = int(rng.poisson(daily))
            if n:
                gaps = (window / n) * (1.0 + 0.3 * rng.uniform(-1, 1, size=n))
                chunks.append(begin + np.cumsum(gaps))
        ts = np.concatenate(chunks) if chunks else np.empty(0)
        ts = ts[ts < ctx.end]
        ev = Events(ts)
        lo, hi = ctx.ranges[p["source"]]
        base = int(rng.integers(lo, hi - p["narrow_items"]))
        ev.put("text", rng.integers(base, base + p["narrow_items"], size=ev.n))
        ev.put("wrap", ctx.wrap(BATCH_TEMPLATES[int(rng.integers(len(BATCH_TEMPLATES)))]))
        ev.put("model", _models(ctx, rng, p, ts))
        ev.put("ip", ips[rng.integers(0, len(ips), size=ev.n)])
        ev.put(
            "ua", ctx.uas.add(choose(rng, ["python-httpx/0.27.0", "anthropic-python/0.39.0"], 1)[0])
        )
        ev.put("temperature", 0.0)
        ev.put("max_tokens", int(choose(rng, [16, 32, 64], 1)[0]))
        ev.put("stream", False)
        out.append((acct, finish(ctx, ev, rng, fallback_response_chars=40.0, verbosity=0.3)))
    return out


def eval_runners(
    ctx: Context, group: Group, _rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    """Benchmark runs: the GSM8K test set in bursts at temperature 0, sometimes with logprobs."""
    p = group.params
    lo, hi = ctx.ranges["gsm8k"]
    out = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _account(ctx, group, rng)
        ips = ctx.book.pool(rng, as_by_kind("cloud")[:1] + as_by_kind("university")[:1], 2)
        tz = float(choose(rng, [-6.0, 1.0, 9.0], 1)[0])
        runs = max(1, int(rng.poisson(p["runs_per_day"] * ctx.scenario.days)))
        starts = poisson_times(rng, ctx, runs, hour_weights(ctx, WORK, tz, 0.3))
        chunks, texts = [], []
        for start in starts:
            size = int(rng.integers(p["run_min"], min(p["run_max"], hi - lo) + 1))
            chunks.append(start + np.cumsum(rng.exponential(p["gap_mean_s"], size=size)))
            texts.append(np.arange(lo, lo + size))
        ts = np.concatenate(chunks)
        order = np.argsort(ts, kind="stable")
        keep = ts[order] < ctx.end
        ev = Events(ts[order][keep])
        ev.put("text", np.concatenate(texts)[order][keep])
        ev.put("wrap", ctx.wrap(EVAL_TEMPLATES[int(rng.integers(len(EVAL_TEMPLATES)))]))
        adopt = adoption_time(rng, ctx, 0.8, 6.0)
        ev.put(
            "model", assign_models(ctx, rng, ev.ts, mini_share=0.3, adopt_at=adopt, adopt_share=0.5)
        )
        ev.put("ip", ips[rng.integers(0, len(ips), size=ev.n)])
        ev.put(
            "ua",
            ctx.uas.add(
                choose(
                    rng, ["lm-eval-harness/0.4.5", "openai-python/1.54.3", "python-httpx/0.27.0"], 1
                )[0]
            ),
        )
        ev.put("temperature", 0.0)
        ev.put("max_tokens", 512)
        if rng.random() < p["logprobs_fraction"]:
            ev.put("logprobs", True)
            ev.put("top_logprobs", 5)
        ev.put("stream", False)
        out.append((acct, finish(ctx, ev, rng, verbosity=1.3)))
    return out


def research_groups(
    ctx: Context, group: Group, _rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    """Academics asking for chain of thought at modest volume, varying sampling parameters."""
    p = group.params
    out = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _account(ctx, group, rng)
        ip, tz = _home(ctx, rng, "university")
        per_day = lognormal_volume(rng, p["sessions_per_day"], p["sigma"])
        ts = session_times(
            rng,
            ctx,
            int(rng.poisson(per_day * ctx.scenario.days)),
            hour_weights(ctx, WORK, tz, 0.4),
            p["session_len"],
            p["gap_median_s"],
        )
        ev = Events(ts)
        ev.put("text", ctx.pick_mix(rng, p["sources"], ev.n))
        ev.put("wrap", choose(rng, [ctx.wrap(t) for t in RESEARCH_TEMPLATES], ev.n))
        ev.put("model", _models(ctx, rng, p, ts))
        ev.put("ip", ip)
        ev.put(
            "ua",
            ctx.uas.add(
                choose(
                    rng,
                    ["anthropic-python/0.40.1", "python-requests/2.31.0", "openai-python/1.54.3"],
                    1,
                )[0]
            ),
        )
        ev.put("temperature", choose(rng, [0.0, 0.7, 1.0], ev.n))
        ev.put("n", choose(rng, [1, 1, 1, 4, 8], ev.n))
        ev.put("logprobs", rng.random(ev.n) < 0.2)
        ev.put("max_tokens", 4096)
        out.append((acct, finish(ctx, ev, rng, verbosity=1.5, reasoning_chars=1200.0)))
    return out


def agent_products(
    ctx: Context, group: Group, _rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    """Agents: round-the-clock task chains of tool calls, dozens of declared tools."""
    p = group.params
    out = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _account(ctx, group, rng, endpoint="/v1/messages", keys=3)
        ips = ctx.book.pool(rng, as_by_kind("cloud"), int(rng.integers(2, 7)))
        daily = lognormal_volume(rng, p["daily_requests"], p["sigma"])
        tasks = int(rng.poisson(daily / p["chain_len"] * ctx.scenario.days))
        ts = session_times(
            rng,
            ctx,
            tasks,
            hour_weights(ctx, FLAT, 0.0, 0.9),
            p["chain_len"],
            p["gap_median_s"],
            0.5,
        )
        ev = Events(ts)
        ev.put("text", ctx.pick_mix(rng, p["sources"], ev.n))
        ev.put("wrap", choose(rng, [ctx.wrap(t) for t in AGENT_TEMPLATES], ev.n))
        ev.put("model", _models(ctx, rng, p, ts))
        ev.put("ip", ips[rng.integers(0, len(ips), size=ev.n)])
        ev.put("key", rng.integers(0, acct.keys, size=ev.n))
        agents = ["langchain-anthropic/0.3.0", "anthropic-python/0.39.0", "litellm/1.52.0"]
        ev.put("ua", ctx.uas.add(choose(rng, agents, 1)[0]))
        # Each product writes its own system prompt: distinct companies, distinct text.
        ev.put(
            "system",
            ctx.systems.add(
                AGENT_SYSTEM_PROMPT.format(
                    name=AGENT_NAMES[int(rng.integers(len(AGENT_NAMES)))],
                    domain=AGENT_DOMAINS[int(rng.integers(len(AGENT_DOMAINS)))],
                    company=" ".join(choose(rng, list(COMPANY_WORDS), 2).tolist()) + " Ltd",
                )
            ),
        )
        ev.put("tool_count", int(rng.integers(12, 41)))
        ev.put("temperature", float(rng.uniform(0.2, 1.0)))
        ev.put("max_tokens", 4096)
        ev.put("stream", bool(rng.random() < 0.5))
        history = rng.lognormal(np.log(2500), 0.8, size=ev.n).astype(np.int64)
        out.append(
            (acct, finish(ctx, ev, rng, context_tokens=history, fallback_response_chars=450.0))
        )
    return out


_HUMAN_SOURCES = {"nq": 0.6, "self_instruct": 0.25, "gsm8k": 0.15}

BENIGN: dict[str, Archetype] = {
    a.name: a
    for a in (
        Archetype(
            "hobbyist",
            "benign",
            {
                **COMMON,
                "sessions_per_day": 1.2,
                "sigma": 0.8,
                "session_len": 5,
                "gap_median_s": 45.0,
                "sources": _HUMAN_SOURCES,
            },
            hobbyists,
            "individuals chatting in the evening",
        ),
        Archetype(
            "campus_nat",
            "benign",
            {
                **COMMON,
                "sessions_per_day": 1.5,
                "sigma": 0.8,
                "session_len": 5,
                "gap_median_s": 40.0,
                "nat_ips": 3,
                "sources": {"nq": 0.5, "self_instruct": 0.3, "gsm8k": 0.2},
            },
            campus_nat,
            "many honest accounts behind one university NAT",
        ),
        Archetype(
            "corporate_nat",
            "benign",
            {
                **COMMON,
                "sessions_per_day": 2.0,
                "sigma": 0.7,
                "session_len": 6,
                "gap_median_s": 30.0,
                "nat_ips": 2,
                "tool_share": 0.3,
                "sources": {"self_instruct": 0.6, "nq": 0.4},
            },
            corporate_nat,
            "employees behind one corporate NAT, one org and card",
        ),
        Archetype(
            "chat_backend",
            "benign",
            {
                **COMMON,
                "mini_share": 0.6,
                "redacted_fraction": 0.2,
                "daily_requests": 1500.0,
                "sigma": 0.7,
                "sources": {"nq": 0.7, "self_instruct": 0.3},
            },
            chat_backends,
            "an app relaying many end users",
        ),
        Archetype(
            "coding_assistant",
            "benign",
            {
                **COMMON,
                "sessions_per_day": 12.0,
                "sigma": 0.6,
                "session_len": 12,
                "gap_median_s": 8.0,
                "sources": {"self_instruct": 0.6, "nq": 0.4},
            },
            coding_assistants,
            "IDE plug-ins in work hours with tools",
        ),
        Archetype(
            "enterprise_batch",
            "benign",
            {
                **COMMON,
                "mini_share": 0.9,
                "redacted_fraction": 0.3,
                "daily_requests": 6000.0,
                "sigma": 0.5,
                "window_hours": 3.0,
                "source": "nq",
                "narrow_items": 150,
            },
            enterprise_batch,
            "nightly templated narrow jobs at temperature 0",
        ),
        Archetype(
            "eval_runner",
            "benign",
            {
                **COMMON,
                "runs_per_day": 1.0,
                "run_min": 250,
                "run_max": 1319,
                "gap_mean_s": 0.25,
                "logprobs_fraction": 0.35,
            },
            eval_runners,
            "benchmark runs in bursts",
        ),
        Archetype(
            "research_group",
            "benign",
            {
                **COMMON,
                "sessions_per_day": 4.0,
                "sigma": 0.6,
                "session_len": 15,
                "gap_median_s": 20.0,
                "sources": {"gsm8k": 0.4, "self_instruct": 0.4, "nq": 0.2},
            },
            research_groups,
            "chain-of-thought prompts at modest volume",
        ),
        Archetype(
            "agent_product",
            "benign",
            {
                **COMMON,
                "daily_requests": 1200.0,
                "sigma": 0.6,
                "chain_len": 6,
                "gap_median_s": 2.5,
                "sources": {"nq": 0.5, "self_instruct": 0.5},
            },
            agent_products,
            "agents with heavy tool use, 24/7",
        ),
    )
}
