"""Honest look-alikes of coordination: customers who share, synchronise and template.

DESIGN.md: coordination alone is not distillation. Each archetype here is one honest
group whose accounts are linked (a card, a NAT, a network), synchronised (a nightly
cron, a lecture, a deadline, a kickoff) or templated (an assignment, a starter kit) --
everything a hydra shows -- but none of them harvests: people's prompts and sessions,
repeated benchmark items, short answers. A detector that flags them has learnt
"coordination", not "distillation". Every group is labelled ``benign`` and carries its
own archetype name, so evaluation reports each one's false alerts separately.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillguard.sim.benign import CAMPUS, EVAL_TEMPLATES, EVENING, WORK
from distillguard.sim.network import (
    BROWSER_USER_AGENTS,
    IDE_USER_AGENTS,
    SDK_USER_AGENTS,
    TZ_BY_COUNTRY,
    as_by_kind,
)
from distillguard.sim.tactics import human_sessions, restricted_weights, sticky_home
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
    session_times,
)

Generated = list[tuple[Account, Events]]
_PEOPLE_UAS = SDK_USER_AGENTS + BROWSER_USER_AGENTS


def _member(
    ctx: Context, group: Group, rng: np.random.Generator, *, org: str, payment: str
) -> Account:
    """An honest account; ``org`` may be empty (the field is then absent from events)."""
    return Account(
        account_id=ctx.new_id("acct"),
        archetype=group.archetype,
        label="benign",
        campaign=None,
        org_id=org,
        payment=payment,
        endpoint=str(choose(rng, ["/v1/messages", "/v1/chat/completions"], 1, [0.7, 0.3])[0]),
        redacted=bool(rng.random() < group.params["redacted_fraction"]),
    )


def _models(ctx: Context, rng: np.random.Generator, ts: np.ndarray) -> np.ndarray:
    """Flagship and mini as people mix them; some adopt a released model in their own time."""
    adopt = adoption_time(rng, ctx, 0.3, 36.0)
    return assign_models(
        ctx,
        rng,
        ts,
        mini_share=float(choose(rng, [0.0, 0.15, 0.3, 0.5], 1)[0]),
        adopt_at=adopt,
        adopt_share=float(rng.uniform(0.3, 0.9)),
    )


def _person_params(rng: np.random.Generator, ev: Events) -> None:
    ev.put("temperature", choose(rng, [np.nan, 0.7, 1.0], ev.n, [0.5, 0.3, 0.2]))
    ev.put("max_tokens", int(choose(rng, [1024, 2048, 4096], 1)[0]))
    ev.put("stream", rng.random() < 0.7)


def company_card(ctx: Context, group: Group, rng: np.random.Generator) -> Generated:
    """A company's employees: one corporate card on every account, most under the
    company's org but some without any org_id (people who signed up on their own and
    expensed it), the office NAT for most requests, home lines for remote workers,
    office hours, human sessions, some tool use."""
    p = group.params
    corp = as_by_kind("corporate")[int(rng.integers(len(as_by_kind("corporate"))))]
    office = ctx.book.pool(rng, [corp], p["nat_ips"])
    tz = TZ_BY_COUNTRY.get(corp.country, 0.0)
    org, card = ctx.new_id("org"), ctx.new_id("pf")
    out = []
    for i in range(group.accounts):
        arng = group_rng(ctx, group, i)
        own_org = "" if arng.random() < p["orgless_share"] else org
        acct = _member(ctx, group, arng, org=own_org, payment=card)
        ts = human_sessions(
            ctx,
            arng,
            ctx.start,
            ctx.end,
            sessions_per_day=float(arng.lognormal(np.log(p["sessions_per_day"]), 0.6)),
            profile=WORK,
            tz=tz,
            weekend=0.1,
            session_len=6.0,
            gap_median_s=30.0,
        )
        ev = Events(ts)
        ev.put("text", ctx.pick_mix(arng, p["sources"], ev.n))
        ev.put("model", _models(ctx, arng, ts))
        if arng.random() < p["remote_share"]:
            home, _ = sticky_home(ctx, arng)
            at_home = arng.random(ev.n) < 0.8
            ip = np.where(at_home, home, office[arng.integers(0, len(office), size=ev.n)])
        else:
            ip = office[arng.integers(0, len(office), size=ev.n)]
        ev.put("ip", ip)
        uas = SDK_USER_AGENTS + IDE_USER_AGENTS
        ev.put("ua", ctx.uas.add(uas[int(arng.integers(len(uas)))]))
        _person_params(arng, ev)
        ev.put("tool_count", np.where(arng.random(ev.n) < 0.3, arng.integers(2, 9), -1))
        out.append((acct, finish(ctx, ev, arng, fallback_response_chars=500.0)))
    return out


def eval_vendor(ctx: Context, group: Group, rng: np.random.Generator) -> Generated:
    """An evaluation vendor: one org, one card, N accounts that each run the same
    benchmark (the first ``items`` GSM8K problems, in order) every night at the same
    cron time, temperature 0, from one cloud range -- synchronised, templated, rerun."""
    p = group.params
    cloud = as_by_kind("cloud")[int(rng.integers(len(as_by_kind("cloud"))))]
    pool = ctx.book.pool(rng, [cloud], p["cloud_ips"])
    org, card = ctx.new_id("org"), ctx.new_id("pf")
    lo, hi = ctx.ranges["gsm8k"]
    items = np.arange(lo, min(hi, lo + p["items"]), dtype=np.int32)
    wrap = ctx.wrap(EVAL_TEMPLATES[0])
    models = list(range(len(ctx.scenario.models)))
    out = []
    for i in range(group.accounts):
        arng = group_rng(ctx, group, i)
        acct = _member(ctx, group, arng, org=org, payment=card)
        model = models[i % len(models)]
        chunks, texts = [], []
        for day in range(int(np.ceil(ctx.scenario.days))):
            begin = (
                ctx.start
                + day * DAY
                + p["cron_hour_utc"] * HOUR
                + i * p["account_stagger_s"]
                + float(arng.normal(0.0, 20.0))
            )
            chunks.append(begin + np.cumsum(arng.exponential(p["gap_mean_s"], size=len(items))))
            texts.append(items)
        ts = np.concatenate(chunks)
        keep = ts < ctx.end
        if ctx.release is not None and model == ctx.release[0]:
            keep &= ts >= ctx.release[1]  # a model is evaluated once it exists
        ev = Events(ts[keep])
        ev.put("text", np.concatenate(texts)[keep])
        ev.put("wrap", wrap)
        ev.put("model", model)
        ev.put("ip", pool[arng.integers(0, len(pool), size=ev.n)])
        ev.put("ua", ctx.uas.add("lm-eval-harness/0.4.5"))
        ev.put("temperature", 0.0)
        ev.put("max_tokens", 512)
        if i % 3 == 0:
            ev.put("logprobs", True)
            ev.put("top_logprobs", 5)
        ev.put("stream", False)
        out.append((acct, finish(ctx, ev, arng, verbosity=1.3)))
    return out


#: One template per assignment; the course's assignments ask for explanations, as
#: students do (reasoning elicitation is no evidence of extraction on its own).
ASSIGNMENT_TEMPLATES = (
    "Intro to Programming, assignment 1, problem:\n{p}\n\nCan you explain how to solve it "
    "step by step? I want to understand it, not just get the answer.",
    "CS 101 homework 2. {p}\nPlease help me understand the approach.",
    "Assignment 3 (due tonight): {p}\nWhere do I even start?",
)


def university_course(ctx: Context, group: Group, rng: np.random.Generator) -> Generated:
    """A course of new students: every account signs up during one lecture hour behind
    the campus NAT, the assignment of the week is pasted into one template, and work
    bunches up before each deadline; some students also use their phones."""
    p = group.params
    uni = as_by_kind("university")[int(rng.integers(len(as_by_kind("university"))))]
    nat = ctx.book.pool(rng, [uni], p["nat_ips"])
    mobile = as_by_kind("mobile")[0]
    tz = TZ_BY_COUNTRY.get(uni.country, 0.0)
    lecture = ctx.start + p["lecture_day"] * DAY + (p["lecture_hour_local"] - tz) * HOUR
    deadlines = [ctx.start + d * DAY + (23.99 - tz) * HOUR for d in p["deadline_days"]]
    bounds = np.asarray([-np.inf, *deadlines, np.inf])
    wraps = [ctx.wrap(t) for t in ASSIGNMENT_TEMPLATES]
    out = []
    for i in range(group.accounts):
        arng = group_rng(ctx, group, i)
        acct = _member(ctx, group, arng, org=ctx.new_id("org"), payment=ctx.new_id("pf"))
        signup = lecture + float(arng.uniform(0, p["signup_minutes"] * 60.0))
        in_class = signup + np.cumsum(
            np.r_[0.0, arng.lognormal(np.log(40.0), 0.6, size=int(arng.integers(2, 6)))]
        )
        later = human_sessions(
            ctx, arng, signup + HOUR, ctx.end, sessions_per_day=1.0, profile=CAMPUS, tz=tz
        )
        rush = []
        for dl in deadlines:
            if dl > signup and arng.random() < p["deadline_share"]:
                start = max(signup, dl - float(arng.exponential(3.0)) * HOUR)
                k = int(arng.geometric(1 / 6))
                rush.append(start + np.cumsum(arng.lognormal(np.log(60.0), 0.7, size=k)))
        ts = np.sort(np.concatenate([in_class, later, *rush]))
        ev = Events(ts[ts < ctx.end])
        ev.put("text", ctx.pick_mix(arng, p["sources"], ev.n))
        assignment = np.clip(np.searchsorted(bounds, ev.ts) - 1, 0, len(wraps) - 1)
        templated = arng.random(ev.n) < p["template_share"]
        ev.put("wrap", np.where(templated, np.asarray(wraps)[assignment], 0))
        ev.put("model", _models(ctx, arng, ev.ts))
        on_phone = (arng.random() < p["phone_share"]) & (arng.random(ev.n) < 0.3)
        phone = ctx.book.random(arng, mobile)
        ev.put("ip", np.where(on_phone, phone, nat[arng.integers(0, len(nat), size=ev.n)]))
        ev.put("ua", ctx.uas.add(_PEOPLE_UAS[int(arng.integers(len(_PEOPLE_UAS)))]))
        _person_params(arng, ev)
        out.append((acct, finish(ctx, ev, arng, verbosity=1.2, reasoning_chars=600.0)))
    return out


#: The organisers' starter kit: one client, one system prompt, one prompt wrapper, tools.
KIT_USER_AGENT = "hackkit/0.3 python-httpx/0.27.0"
KIT_SYSTEM_PROMPT = (
    "You are the assistant of a Hack Day project built with the organisers' starter kit. "
    "Use the provided tools when they help, keep answers short, and say when you are unsure."
)
KIT_TEMPLATE = "[starter-kit] user request: {p}"


def hackathon(ctx: Context, group: Group, rng: np.random.Generator) -> Generated:
    """A hackathon: dozens of new accounts signing up within half an hour of kickoff on the
    conference network, all on the organisers' starter kit (client, system prompt,
    wrapper, example tools), quick test loops for a weekend; teams share a card; some
    requests go out over phone hotspots; a few keep using it afterwards."""
    p = group.params
    venue_as = as_by_kind("corporate")[int(rng.integers(len(as_by_kind("corporate"))))]
    venue = ctx.book.pool(rng, [venue_as], p["venue_ips"])
    mobile = as_by_kind("mobile")[0]
    tz = TZ_BY_COUNTRY.get(venue_as.country, 0.0)
    kickoff = ctx.start + p["kickoff_day"] * DAY + (9.0 - tz) * HOUR
    close = kickoff + p["event_hours"] * HOUR
    wrap, system = ctx.wrap(KIT_TEMPLATE), ctx.systems.add(KIT_SYSTEM_PROMPT)
    ua = ctx.uas.add(KIT_USER_AGENT)
    cards = [ctx.new_id("pf") for _ in range(-(-group.accounts // p["team_size"]))]
    out = []
    for i in range(group.accounts):
        arng = group_rng(ctx, group, i)
        acct = _member(ctx, group, arng, org=ctx.new_id("org"), payment=cards[i // p["team_size"]])
        signup = kickoff + float(arng.uniform(0, p["signup_minutes"] * 60.0))
        w = restricted_weights(ctx, np.ones(24), tz, 1.0, signup, close)
        n = int(arng.poisson(p["sessions_per_event"]))
        hacking = session_times(arng, ctx, n, w, 8.0, 6.0, 1.0) if w.sum() > 0 else np.empty(0)
        hacking = hacking[(hacking >= signup) & (hacking < close + 2 * HOUR)]
        first = signup + np.cumsum(np.r_[0.0, arng.lognormal(np.log(8.0), 0.8, size=5)])
        after = (
            human_sessions(ctx, arng, close, ctx.end, sessions_per_day=1.0, profile=EVENING, tz=tz)
            if arng.random() < p["keep_using_share"]
            else np.empty(0)
        )
        ts = np.sort(np.concatenate([first, hacking, after]))
        ev = Events(ts[ts < ctx.end])
        ev.put("text", ctx.pick_mix(arng, p["sources"], ev.n))
        at_event = ev.ts < close + 2 * HOUR
        ev.put("wrap", np.where(at_event, wrap, 0))
        ev.put("system", np.where(at_event, system, -1))
        ev.put("model", ctx.flagship)
        hotspot = arng.random(ev.n) < p["hotspot_share"]
        home, _ = sticky_home(ctx, arng)
        spot = ctx.book.random(arng, mobile)
        ip = np.where(at_event, venue[arng.integers(0, len(venue), size=ev.n)], home)
        ev.put("ip", np.where(hotspot & at_event, spot, ip))
        ev.put("ua", np.where(at_event, ua, ctx.uas.add(SDK_USER_AGENTS[0])))
        ev.put("tool_count", np.where(at_event & (arng.random(ev.n) < 0.6), 3, -1))
        ev.put("temperature", 0.7)
        ev.put("max_tokens", 1024)
        ev.put("stream", True)
        out.append((acct, finish(ctx, ev, arng, fallback_response_chars=400.0)))
    return out


def household(ctx: Context, group: Group, rng: np.random.Generator) -> Generated:
    """Families: each household is one org with one card and one home address, two to five
    accounts -- parents in the evening, children doing maths homework after school."""
    p = group.params
    out: list[tuple[Account, Events]] = []
    i = 0
    while i < group.accounts:
        size = min(group.accounts - i, int(rng.integers(2, p["max_size"] + 1)))
        hrng = group_rng(ctx, group, 100_000 + i)
        home, tz = sticky_home(ctx, hrng)
        org, card = ctx.new_id("org"), ctx.new_id("pf")
        for member in range(size):
            arng = group_rng(ctx, group, i)
            child = member >= 2 or (member == 1 and arng.random() < 0.3)
            acct = _member(ctx, group, arng, org=org, payment=card)
            ts = human_sessions(
                ctx,
                arng,
                ctx.start,
                ctx.end,
                sessions_per_day=p["sessions_per_day"],
                profile=np.roll(EVENING, -2) if child else EVENING,
                tz=tz,
                weekend=1.3,
            )
            ev = Events(ts)
            mix = {"gsm8k": 0.7, "nq": 0.3} if child else {"nq": 0.6, "self_instruct": 0.4}
            ev.put("text", ctx.pick_mix(arng, mix, ev.n))
            ev.put("model", _models(ctx, arng, ts))
            ev.put("ip", home)
            ev.put("ua", ctx.uas.add(_PEOPLE_UAS[int(arng.integers(len(_PEOPLE_UAS)))]))
            _person_params(arng, ev)
            out.append((acct, finish(ctx, ev, arng, fallback_response_chars=500.0)))
            i += 1
    return out


_COMMON: dict[str, Any] = {"redacted_fraction": 0.0}

HONEST_GROUPS: dict[str, Archetype] = {
    a.name: a
    for a in (
        Archetype(
            "company_card",
            "benign",
            {
                **_COMMON,
                "sessions_per_day": 2.0,
                "nat_ips": 2,
                "orgless_share": 0.3,
                "remote_share": 0.3,
                "sources": {"self_instruct": 0.5, "nq": 0.35, "gsm8k": 0.15},
            },
            company_card,
            "employees on one corporate card, some without org_id",
        ),
        Archetype(
            "eval_vendor",
            "benign",
            {
                **_COMMON,
                "items": 300,
                "cron_hour_utc": 1.5,
                "account_stagger_s": 30.0,
                "gap_mean_s": 0.5,
                "cloud_ips": 4,
            },
            eval_vendor,
            "one org running one benchmark nightly from many accounts",
        ),
        Archetype(
            "university_course",
            "benign",
            {
                **_COMMON,
                "nat_ips": 3,
                "lecture_day": 0,
                "lecture_hour_local": 10.0,
                "signup_minutes": 60.0,
                "deadline_days": [1, 3],
                "deadline_share": 0.8,
                "template_share": 0.7,
                "phone_share": 0.25,
                "sources": {"gsm8k": 0.5, "self_instruct": 0.5},
            },
            university_course,
            "150 new students in an hour behind the campus NAT, one template, deadlines",
        ),
        Archetype(
            "hackathon",
            "benign",
            {
                **_COMMON,
                "venue_ips": 2,
                "kickoff_day": 0,
                "event_hours": 33.0,
                "signup_minutes": 30.0,
                "team_size": 4,
                "sessions_per_event": 12.0,
                "hotspot_share": 0.15,
                "keep_using_share": 0.3,
                "sources": {"self_instruct": 0.6, "nq": 0.4},
            },
            hackathon,
            "new accounts at one venue on the organisers' starter kit",
        ),
        Archetype(
            "household",
            "benign",
            {**_COMMON, "sessions_per_day": 1.0, "max_size": 5},
            household,
            "families: one org, one card, one home each",
        ),
    )
}
