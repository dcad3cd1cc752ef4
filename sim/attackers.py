"""Attacker archetypes: the distillation operations of DESIGN.md, one generator each.

Distillers send machine-generated instruction sets (coding, tool use), wrapped in
their campaign's templates and reasoning-elicitation phrasings. Each archetype
exercises a different signal: raw volume and regularity (bulk), harvesting
parameters (logprobs), coordination of individually quiet accounts (hydra), patience
(low and slow) and the rush to a newly released model (pivot).
"""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np

from distillguard.sim.benign import FLAT
from distillguard.sim.network import SCRIPT_USER_AGENTS, SDK_USER_AGENTS, as_by_kind
from distillguard.sim.traffic import (
    DAY,
    HOUR,
    NEVER,
    Account,
    Archetype,
    Context,
    Events,
    Group,
    assign_models,
    choose,
    finish,
    group_rng,
    hour_weights,
    poisson_times,
    regular_times,
    with_retries,
)

#: Campaign templates: one skeleton, slots filled with the instruction set, asking for
#: the reasoning trace a student model needs.
TEMPLATES = (
    "{p}\n\nThink through this step by step and show all of your reasoning before the final "
    "answer.",
    "You are an expert. Solve the task below. First write your complete chain of thought inside "
    "<thinking></thinking> tags, then give the final answer.\n\nTask:\n{p}",
    "### Instruction:\n{p}\n\n### Response (explain each step of your reasoning, then restate the "
    "final answer):",
    "Task: {p}\n\nAnswer in three parts: (1) detailed step-by-step reasoning, (2) the final "
    "answer, "
    "(3) a grade of your own answer against a rubric of correctness, completeness and clarity.",
    "Please help with the following.\n{p}\nWalk me through how you arrive at the answer, "
    "explaining why each step is needed.",
    "[INST] {p} [/INST] Let's reason about this carefully, step by step:",
)
DISTILL_SOURCES = {"codegen": 0.6, "toolformer": 0.4}


def _campaign_rng(ctx: Context, group: Group) -> np.random.Generator:
    return np.random.default_rng([ctx.scenario.seed, group.index, 1_000_003])


def _templates(ctx: Context, rng: np.random.Generator, count: int) -> list[int]:
    if count <= 0:
        return [0]
    picks = rng.choice(len(TEMPLATES), size=min(count, len(TEMPLATES)), replace=False)
    return [ctx.wrap(TEMPLATES[int(i)]) for i in picks]


def _distiller(
    ctx: Context, group: Group, *, payment: str | None = None, keys: int = 1, redacted: bool = False
) -> Account:
    return Account(
        account_id=ctx.new_id("acct"),
        archetype=group.archetype,
        label="distiller",
        campaign=group.campaign,
        org_id=ctx.new_id("org"),
        payment=payment or ctx.new_id("pf"),
        endpoint="/v1/messages",
        redacted=redacted,
        keys=keys,
    )


def _prompts(
    ctx: Context, rng: np.random.Generator, ev: Events, p: dict[str, Any], wraps: list[int]
) -> np.ndarray:
    """Distillation prompts in the campaign's templates, diluted with mundane questions.

    Returns the mask of mundane (filler) events.
    """
    text = ctx.pick_mix(rng, p["sources"], ev.n)
    wrap = np.asarray(wraps, dtype=np.int16)[rng.integers(0, len(wraps), size=ev.n)]
    mundane = rng.random(ev.n) < p["mundane_share"]
    text[mundane] = ctx.pick(rng, "nq", int(mundane.sum()))
    wrap[mundane] = 0
    ev.put("text", text)
    ev.put("wrap", wrap)
    return mundane


class _Lengths(TypedDict):
    """The answer-length arguments of :func:`finish`, per event."""

    verbosity: np.ndarray
    reasoning_chars: np.ndarray


def _lengths(ctx: Context, ev: Events, p: dict[str, Any]) -> _Lengths:
    """Reasoning-elicited answers run long; the mundane filler gets ordinary answers."""
    lo, hi = ctx.ranges["nq"]
    text = ev.column("text")
    filler = (text >= lo) & (text < hi)
    return {
        "verbosity": np.where(filler, 1.0, p["verbosity"]),
        "reasoning_chars": np.where(filler, 0.0, p["reasoning_chars"]),
    }


def bulk_distiller(
    ctx: Context, group: Group, _rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    """One account, flat 24/7 at machine-regular intervals, long reasoning outputs, 429 retries."""
    p = group.params
    out = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group, keys=p["keys"], redacted=p["redacted"])
        ips = ctx.book.pool(rng, as_by_kind("hosting")[:1], 3)
        ts = regular_times(
            rng,
            ctx.start + float(rng.uniform(0, HOUR)),
            ctx.end,
            DAY / p["daily_requests"],
            p["jitter"],
        )
        ev = Events(ts)
        _prompts(ctx, rng, ev, p, _templates(ctx, rng, p["templates"]))
        ev.put("model", ctx.flagship)
        ev.put("ip", ips[rng.integers(0, len(ips), size=ev.n)])
        ev.put("key", rng.integers(0, acct.keys, size=ev.n))
        ev.put("ua", ctx.uas.add(p["user_agent"]))
        ev.put("temperature", p["temperature"])
        ev.put("max_tokens", p["max_tokens"])
        ev.put("stream", False)
        ev = with_retries(rng, ev, p["rate_limited"])
        out.append((acct, finish(ctx, ev, rng, **_lengths(ctx, ev, p))))
    return out


def logprob_harvester(
    ctx: Context, group: Group, _rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    """Token distributions, not answers: logprobs with many alternatives, n > 1, short outputs."""
    p = group.params
    out = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group, keys=2, redacted=p["redacted"])
        ips = ctx.book.pool(rng, as_by_kind("cloud")[1:2], 2)
        ts = regular_times(
            rng,
            ctx.start + float(rng.uniform(0, HOUR)),
            ctx.end,
            DAY / p["daily_requests"],
            p["jitter"],
        )
        ev = Events(ts)
        _prompts(ctx, rng, ev, p, _templates(ctx, rng, p["templates"]))
        ev.put("model", ctx.flagship)
        ev.put("ip", ips[rng.integers(0, len(ips), size=ev.n)])
        ev.put("key", rng.integers(0, acct.keys, size=ev.n))
        ev.put("ua", ctx.uas.add(p["user_agent"]))
        ev.put("temperature", choose(rng, [0.0, 1.0], ev.n))
        ev.put("n", choose(rng, [1, 5], ev.n, [0.6, 0.4]))
        ev.put("logprobs", True)
        ev.put("top_logprobs", p["top_logprobs"])
        ev.put("max_tokens", p["max_tokens"])
        ev.put("stream", False)
        out.append((acct, finish(ctx, ev, rng, **_lengths(ctx, ev, p))))
    return out


def hydra(ctx: Context, group: Group, _rng: np.random.Generator) -> list[tuple[Account, Events]]:
    """Tens to hundreds of quiet accounts tied by what they share (``share``).

    ``payment``: a few cards pay for all accounts; ``proxy_pool``: every request exits
    through one pool of hosting addresses; ``user_agent``: one scripted client;
    ``template``: one campaign template set; ``schedule``: all accounts fire inside the
    same short windows. Each account stays below the benign median volume.
    """
    p = group.params
    share = set(p["share"])
    unknown = share - {"payment", "proxy_pool", "user_agent", "template", "schedule"}
    if unknown:
        raise ValueError(f"hydra {group.campaign}: unknown share {sorted(unknown)}")
    crng = _campaign_rng(ctx, group)
    cards = [ctx.new_id("pf") for _ in range(max(1, group.accounts // p["accounts_per_card"]))]
    hosting = as_by_kind("hosting")
    proxy = ctx.book.pool(
        crng, [hosting[int(j)] for j in crng.choice(len(hosting), 3, False)], p["proxy_ips"]
    )
    campaign_ua = str(p["user_agent"])
    campaign_wraps = _templates(ctx, crng, p["templates"])
    # Synchronised windows: the campaign's controller wakes its fleet every few hours.
    n_windows = int(ctx.scenario.days * 24 / p["burst_every_h"])
    windows = (
        ctx.start
        + (
            np.arange(n_windows) * p["burst_every_h"]
            + crng.uniform(0, p["burst_every_h"], n_windows) * 0.2
        )
        * HOUR
    )
    out = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        payment = cards[i % len(cards)] if "payment" in share else None
        acct = _distiller(ctx, group, payment=payment, redacted=p["redacted"])
        n = int(rng.poisson(p["per_account_daily"] * ctx.scenario.days))
        if "schedule" in share and n_windows:
            w = windows[rng.integers(0, n_windows, size=n)]
            ts = np.sort(w + rng.uniform(0, p["burst_minutes"] * 60.0, size=n))
        else:
            tz = float(rng.uniform(-8, 9))
            ts = poisson_times(rng, ctx, n, hour_weights(ctx, FLAT, tz))
        ts = ts[ts < ctx.end]
        ev = Events(ts)
        wraps = campaign_wraps if "template" in share else _templates(ctx, rng, 1)
        _prompts(ctx, rng, ev, p, wraps)
        ev.put("model", ctx.flagship)
        if "proxy_pool" in share:
            ev.put("ip", proxy[rng.integers(0, len(proxy), size=ev.n)])
        else:
            residential = as_by_kind("residential")
            ev.put("ip", ctx.book.random(rng, residential[int(rng.integers(len(residential)))]))
        ua = (
            campaign_ua
            if "user_agent" in share
            else SDK_USER_AGENTS[int(rng.integers(len(SDK_USER_AGENTS)))]
        )
        ev.put("ua", ctx.uas.add(ua))
        ev.put("temperature", p["temperature"])
        ev.put("max_tokens", p["max_tokens"])
        ev.put("stream", False)
        out.append((acct, finish(ctx, ev, rng, **_lengths(ctx, ev, p))))
    return out


def low_and_slow(
    ctx: Context, group: Group, _rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    """A few accounts, patient: a modest steady trickle for days, rotating residential exits."""
    p = group.params
    crng = _campaign_rng(ctx, group)
    wraps = _templates(ctx, crng, p["templates"])
    residential = as_by_kind("residential")
    out = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group, redacted=p["redacted"])
        ts = regular_times(
            rng,
            ctx.start + float(rng.uniform(0, 6 * HOUR)),
            ctx.end,
            DAY / p["per_account_daily"],
            p["jitter"],
        )
        ev = Events(ts)
        _prompts(ctx, rng, ev, p, wraps)
        ev.put("model", ctx.flagship)
        day = ((ev.ts - ctx.start) // DAY).astype(np.int64)
        exits = [
            ctx.book.random(rng, residential[int(rng.integers(len(residential)))])
            for _ in range(int(np.ceil(ctx.scenario.days)) + 1)
        ]
        ev.put("ip", np.asarray(exits, dtype=np.int32)[day])
        ev.put("ua", ctx.uas.add(SDK_USER_AGENTS[int(rng.integers(len(SDK_USER_AGENTS)))]))
        ev.put("temperature", p["temperature"])
        ev.put("max_tokens", p["max_tokens"])
        out.append((acct, finish(ctx, ev, rng, **_lengths(ctx, ev, p))))
    return out


def release_pivot(
    ctx: Context, group: Group, _rng: np.random.Generator
) -> list[tuple[Account, Events]]:
    """Moves nearly all traffic to a model within hours of its release."""
    p = group.params
    if ctx.release is None:
        raise ValueError(
            f"campaign {group.campaign}: release_pivot needs a model with "
            "role 'release' and released_at_hour"
        )
    crng = _campaign_rng(ctx, group)
    wraps = _templates(ctx, crng, p["templates"])
    ips = ctx.book.pool(crng, as_by_kind("hosting")[2:4], 6)
    out = []
    for i in range(group.accounts):
        rng = group_rng(ctx, group, i)
        acct = _distiller(ctx, group, redacted=p["redacted"])
        ts = regular_times(
            rng,
            ctx.start + float(rng.uniform(0, HOUR)),
            ctx.end,
            DAY / p["per_account_daily"],
            p["jitter"],
        )
        ev = Events(ts)
        _prompts(ctx, rng, ev, p, wraps)
        adopt = ctx.release[1] + float(rng.uniform(0.3, 1.0)) * p["pivot_within_h"] * HOUR
        ev.put(
            "model",
            assign_models(
                ctx,
                rng,
                ev.ts,
                mini_share=0.0,
                adopt_at=adopt if adopt < NEVER else NEVER,
                adopt_share=p["pivot_share"],
            ),
        )
        ev.put("ip", ips[rng.integers(0, len(ips), size=ev.n)])
        ev.put("ua", ctx.uas.add(SCRIPT_USER_AGENTS[int(crng.integers(len(SCRIPT_USER_AGENTS)))]))
        ev.put("temperature", p["temperature"])
        ev.put("max_tokens", p["max_tokens"])
        ev.put("stream", False)
        out.append((acct, finish(ctx, ev, rng, **_lengths(ctx, ev, p))))
    return out


_DISTILL: dict[str, Any] = {
    "sources": DISTILL_SOURCES,
    "templates": 2,
    "mundane_share": 0.0,
    "temperature": 0.0,
    "max_tokens": 8192,
    "verbosity": 1.5,
    "reasoning_chars": 2400.0,
    "redacted": False,
}

ATTACKERS: dict[str, Archetype] = {
    a.name: a
    for a in (
        Archetype(
            "bulk_distiller",
            "distiller",
            {
                **_DISTILL,
                "daily_requests": 25000.0,
                "jitter": 0.1,
                "rate_limited": 0.03,
                "keys": 6,
                "user_agent": "python-requests/2.31.0",
            },
            bulk_distiller,
            "one account, huge flat volume",
        ),
        Archetype(
            "logprob_harvester",
            "distiller",
            {
                **_DISTILL,
                "daily_requests": 6000.0,
                "jitter": 0.4,
                "templates": 0,
                "top_logprobs": 20,
                "max_tokens": 256,
                "user_agent": "aiohttp/3.9.5",
            },
            logprob_harvester,
            "harvests token distributions",
        ),
        Archetype(
            "hydra",
            "distiller",
            {
                **_DISTILL,
                "per_account_daily": 5.0,
                "share": ["payment", "proxy_pool", "user_agent", "template", "schedule"],
                "accounts_per_card": 12,
                "proxy_ips": 40,
                "mundane_share": 0.25,
                "burst_every_h": 4.0,
                "burst_minutes": 20.0,
                "templates": 1,
                "user_agent": "python-httpx/0.27.0",
            },
            hydra,
            "many quiet coordinated accounts",
        ),
        Archetype(
            "low_and_slow",
            "distiller",
            {
                **_DISTILL,
                "per_account_daily": 40.0,
                "jitter": 0.6,
                "templates": 1,
                "mundane_share": 0.15,
            },
            low_and_slow,
            "a patient trickle over days",
        ),
        Archetype(
            "release_pivot",
            "distiller",
            {
                **_DISTILL,
                "per_account_daily": 800.0,
                "jitter": 0.3,
                "pivot_within_h": 3.0,
                "pivot_share": 0.9,
                "mundane_share": 0.1,
            },
            release_pivot,
            "moves to a new model within hours of release",
        ),
    )
}
