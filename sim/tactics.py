"""Building blocks of adversaries who have read our docs: each one dodges a named signal.

``sim/adversaries.py`` composes these into attacker variants. Every tactic here is
cheap for an operator and aimed at a signal of docs/detectors.md or docs/linkage.md:

- :class:`Wording`: no fixed template, reasoning asked for in free words (or not at
  all), so neither skeleton repeats nor the documented elicitation phrasings appear;
- :class:`ContentQueue`: one dispatcher hands a dataset's rows out, each once per sweep
  (an operator pays for new content only) -- this is the *shared content source* trace;
- :func:`controller_windows`, :func:`window_activity`, :func:`tick_grid`: a controller
  that wakes its fleet at irregular times, so accounts are loosely synchronised with
  each other but with nothing else (not with the clock of the day) -- the *controller's
  clock* trace;
- :func:`human_sessions`, :func:`sdk_defaults`, :func:`sticky_home`,
  :func:`vendor_user_agent`: look like a person or a product (think time, streaming,
  SDK defaults, one residential address).

Everything draws from the generator it is given, so variants stay seeded and
byte-reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from distillguard.sim.network import AS, AS_TABLE, SDK_USER_AGENTS, TZ_BY_COUNTRY, as_by_kind
from distillguard.sim.traffic import (
    COLUMNS,
    DAY,
    HOUR,
    Account,
    Context,
    Events,
    Group,
    choose,
    finish,
    hour_weights,
    session_times,
)

#: Phrasings of reasoning elicitation that docs/detectors.md and the classic campaign
#: templates name. Free wordings avoid every one of them (tested).
DOCUMENTED_PHRASES: tuple[str, ...] = (
    "step by step",
    "step-by-step",
    "show your work",
    "show all of your reasoning",
    "show your thinking",
    "show your reasoning",
    "chain of thought",
    "explain your reasoning",
    "explain each step",
    "explaining why each step",
    "<thinking>",
    "rubric",
    "grade",
    "restate",
    "let's think",
    "let's reason",
    "think through",
    "walk me through",
    "reasoning",
)

#: Ways to ask for the reasoning trace without the documented words: 12 stems x 16
#: endings. A stem opens the request, an ending closes it: placed before the item the
#: stem is the prompt's head, placed after it the ending is its tail, so neither end of
#: a prompt takes one of only a few values.
_FREE_STEMS = (
    "Lay out every stage of how you get to the result",
    "Go one piece at a time and make each inference explicit",
    "Write out the intermediate work in order",
    "I need the full derivation, not just the outcome",
    "Narrate your approach as you go",
    "Describe what you would consider at each stage and why",
    "Make the path to the answer explicit",
    "Pretend you are teaching a junior colleague and cover every decision along the way",
    "Tell me how you get there, one stage after another",
    "Write down every intermediate result as you go",
    "Spell out the logic behind each part",
    "Give me the whole derivation with nothing left implicit",
)
_ENDINGS = (
    ", then give the result on its own line.",
    ", and finish with a one-line summary.",
    ", and only then state the conclusion.",
    ". Number the stages.",
    ", and double-check the conclusion at the end.",
    ". Do not skip anything in between.",
    ". Keep it readable.",
    ", then put the final answer in bold.",
    ". I will compare it with my own attempt.",
    ". It is for my notes.",
    ", and flag anything you are unsure about.",
    ". Take your time.",
    ", and end with the answer alone on the last line.",
    ". Plain English please.",
    ", then sum it up in one sentence.",
    ". Full sentences, please.",
)
FREE_REASONING: tuple[str, ...] = tuple(s + e for s in _FREE_STEMS for e in _ENDINGS)
#: Closers that ask for nothing in particular (reasoning "not at all").
PLAIN_CLOSERS: tuple[str, ...] = (
    "Be thorough.",
    "Please include a complete example.",
    "Please be precise.",
    "Give a full answer, with code where it helps.",
    "Thanks!",
    "Be concise but complete.",
    "Answer in English.",
    "Use markdown.",
    "Thanks in advance.",
    "Keep it practical.",
    "A complete answer would be great.",
    "No need for caveats.",
    "Please be detailed where it matters.",
    "I am a beginner.",
    "Cheers.",
    "This is for a personal project.",
)
OPENERS: tuple[str, ...] = (
    "Quick question. ",
    "Hi! ",
    "I'm working on a side project and need help.\n\n",
    "For a project at work: ",
    "Can you help with this? ",
    "Hello, ",
    "Another one: ",
    "I'd appreciate help with the following.\n",
    "Here's my task: ",
    "Hey, ",
    "Question for you: ",
    "Could you take a look? ",
)
_SEPARATORS = ("\n\n", "\n", " ")
_LEADS = (":\n\n", ".\n\n", ":\n")


class Wording:
    """Per-prompt wrappers drawn fresh for every request: no campaign template.

    ``reasoning``: ``free`` (every harvest prompt asks for the reasoning in free words),
    ``none`` (never asks) or ``mixed`` (half and half). Openers are rare and closers many,
    so no 32-character head or tail repeats often across an account's recent prompts.
    """

    def __init__(self, ctx: Context, reasoning: str, opener_share: float = 0.3) -> None:
        if reasoning not in ("free", "none", "mixed"):
            raise ValueError(f"reasoning must be free, none or mixed, not {reasoning!r}")
        self.ctx, self.reasoning, self.opener_share = ctx, reasoning, opener_share

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(wrap index per prompt, whether it asks for reasoning)."""
        if self.reasoning == "free":
            asks = np.ones(n, dtype=bool)
        elif self.reasoning == "none":
            asks = np.zeros(n, dtype=bool)
        else:
            asks = rng.random(n) < 0.5
        opener = np.where(rng.random(n) < self.opener_share, rng.integers(0, len(OPENERS), n), -1)
        stem = rng.integers(0, len(_FREE_STEMS), n)
        ending = rng.integers(0, len(_ENDINGS), n)
        ask_first = rng.random(n) < 0.5
        # Without reasoning, half of prompts go out bare: the item as the dataset has it.
        plain = np.where(rng.random(n) < 0.5, -1, rng.integers(0, len(PLAIN_CLOSERS), n))
        sep = rng.integers(0, len(_SEPARATORS), n)
        lead = rng.integers(0, len(_LEADS), n)
        wraps = np.empty(n, dtype=np.int16)
        for k in range(n):
            head = OPENERS[opener[k]] if opener[k] >= 0 else ""
            tail = ""
            if asks[k]:
                ask = _FREE_STEMS[stem[k]] + _ENDINGS[ending[k]]
                if ask_first[k]:
                    head = ask[:-1] + _LEADS[lead[k]]
                else:
                    tail = _SEPARATORS[sep[k]] + ask
            elif plain[k] >= 0:
                tail = _SEPARATORS[sep[k]] + PLAIN_CLOSERS[plain[k]]
            wraps[k] = self.ctx.wrap(head + "{p}" + tail) if head or tail else 0
        return wraps, asks


def reword_bare(ctx: Context, plans: Sequence[Plan]) -> None:
    """Past the first sweep, an item that went out bare gets a closer (never twice alike).

    Freely worded prompts differ anyway; a bare item asked again would repeat exactly.
    """
    for p in plans:
        wrap = p.events.column("wrap")
        later = (p.role == HARVEST) & (p.sweep > 0) & (wrap == 0)
        if later.any():
            wrap = wrap.copy()
            text = p.events.column("text")
            for k in np.flatnonzero(later).tolist():
                closer = PLAIN_CLOSERS[(int(text[k]) + int(p.sweep[k])) % len(PLAIN_CLOSERS)]
                wrap[k] = ctx.wrap("{p}\n\n" + closer)
            p.events.put("wrap", wrap)


class ContentQueue:
    """One dispatcher handing out a dataset's rows in shuffled order, each once per sweep.

    An operator pays for every answer, so it never asks the same item twice until the
    whole source is used up; the accounts of a campaign therefore *never collide* on an
    item within a sweep, where independent users sampling the same corpus would (the
    trace). Past the first sweep the operator re-asks every item in other words
    (``sweep`` says which pass an item is on), so exact repeats stay rare.
    """

    def __init__(self, ctx: Context, rng: np.random.Generator, sources: Sequence[str]) -> None:
        self._rng = rng
        self._rows = np.concatenate([np.arange(*ctx.ranges[s], dtype=np.int32) for s in sources])
        self._order = rng.permutation(self._rows)
        self._pos = 0
        self.sweeps = 0

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n`` items and the sweep each is on."""
        out, sweep = [], []
        while n > 0:
            if self._pos == len(self._order):
                self._order, self._pos = self._rng.permutation(self._rows), 0
                self.sweeps += 1
            k = min(n, len(self._order) - self._pos)
            out.append(self._order[self._pos : self._pos + k])
            sweep.append(np.full(k, self.sweeps, dtype=np.int16))
            self._pos += k
            n -= k
        if not out:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int16)
        return np.concatenate(out), np.concatenate(sweep)


# -- per-event roles -----------------------------------------------------------------------

HUMAN = 0  #: the account's cover: ordinary human prompts (warm-up, heavy dilution)
FILLER = 1  #: mundane questions mixed into harvesting (classic dilution)
HARVEST = 2  #: the items the operator wants answers to

HUMAN_SOURCES = {"nq": 0.6, "self_instruct": 0.25, "gsm8k": 0.15}


@dataclass
class Plan:
    """One account before its harvest items are handed out: times and per-event roles."""

    account: Account
    events: Events
    rng: np.random.Generator
    role: np.ndarray
    asks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: which pass of the content queue each harvest event's item is on (0: the first)
    sweep: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))

    def __post_init__(self) -> None:
        if len(self.asks) != self.events.n:
            self.asks = np.zeros(self.events.n, dtype=bool)
        if len(self.sweep) != self.events.n:
            self.sweep = np.zeros(self.events.n, dtype=np.int16)


def hand_out(queue: ContentQueue, plans: Sequence[Plan]) -> None:
    """Give harvest events their items in campaign-wide time order (one queue, one clock)."""
    ts = [p.events.ts[p.role == HARVEST] for p in plans]
    owner = np.concatenate([np.full(len(t), i, dtype=np.int64) for i, t in enumerate(ts)])
    when = np.concatenate(ts) if ts else np.empty(0)
    order = np.lexsort((owner, when))
    items = np.empty(len(when), dtype=np.int32)
    sweeps = np.empty(len(when), dtype=np.int16)
    items[order], sweeps[order] = queue.take(len(when))
    lo = 0
    for p, t in zip(plans, ts, strict=True):
        text = p.events.column("text").copy()
        harvest = p.role == HARVEST
        text[harvest] = items[lo : lo + len(t)]
        p.sweep[harvest] = sweeps[lo : lo + len(t)]
        p.events.put("text", text)
        lo += len(t)


def rotate_wraps(plans: Sequence[Plan], wraps: Sequence[int], first: np.ndarray) -> None:
    """Past the first sweep, a harvest event gets wrapper ``wraps[(first + sweep) % n]``.

    ``first`` is each plan's wrapper index (into ``wraps``) on the first sweep: a
    templated campaign re-asks its items in its next template, a harness in its next
    benchmark format.
    """
    table = np.asarray(wraps, dtype=np.int16)
    for p, f in zip(plans, first.tolist(), strict=True):
        later = (p.role == HARVEST) & (p.sweep > 0)
        if later.any():
            wrap = p.events.column("wrap").copy()
            wrap[later] = table[(f + p.sweep[later]) % len(table)]
            p.events.put("wrap", wrap)


def complete(ctx: Context, plans: Sequence[Plan], p: dict) -> list[tuple[Account, Events]]:
    """Token counts and latencies: harvest items run long, the rest like anyone's."""
    out = []
    for plan in plans:
        harvest = plan.role == HARVEST
        verbosity = np.where(harvest, p["verbosity"], 1.0)
        reasoning = np.where(harvest & plan.asks, p["reasoning_chars"], 0.0)
        ev = finish(ctx, plan.events, plan.rng, verbosity=verbosity, reasoning_chars=reasoning)
        out.append((plan.account, ev))
    return out


def fill_cover(
    ctx: Context, rng: np.random.Generator, ev: Events, role: np.ndarray, mix: dict[str, float]
) -> None:
    """Texts of the non-harvest events: mundane NQ for filler, a person's mix for cover."""
    text = ev.column("text").copy()
    filler, human = role == FILLER, role == HUMAN
    text[filler] = ctx.pick(rng, "nq", int(filler.sum()))
    text[human] = ctx.pick_mix(rng, mix, int(human.sum()))
    ev.put("text", text)


def merge(parts: Sequence[Events]) -> tuple[Events, np.ndarray]:
    """Events of several phases as one time-ordered account; returns (events, phase index)."""
    ts = np.concatenate([e.ts for e in parts]) if parts else np.empty(0)
    merged = Events(ts)
    names = {n for e in parts for n in e.cols if n != "ts"}
    for name in names:
        merged.cols[name] = np.concatenate([e.column(name) for e in parts])
    phase = np.concatenate([np.full(e.n, i, dtype=np.int16) for i, e in enumerate(parts)])
    order = np.argsort(ts, kind="stable")
    return merged.subset(order), phase[order]


# -- timing ---------------------------------------------------------------------------------


def restricted_weights(
    ctx: Context, profile: np.ndarray, tz: float, weekend: float, start: float, end: float
) -> np.ndarray:
    """Hourly weights of a rhythm, zero outside [start, end)."""
    w = hour_weights(ctx, profile, tz, weekend).copy()
    hours = ctx.start + np.arange(len(w)) * HOUR
    w[(hours + HOUR <= start) | (hours >= end)] = 0.0
    total = w.sum()
    return w / total if total > 0 else w


def human_sessions(
    ctx: Context,
    rng: np.random.Generator,
    start: float,
    end: float,
    *,
    sessions_per_day: float,
    profile: np.ndarray,
    tz: float,
    weekend: float = 1.0,
    session_len: float = 5.0,
    gap_median_s: float = 45.0,
) -> np.ndarray:
    """A person's sessions between ``start`` and ``end``: think time between prompts."""
    days = max(0.0, end - start) / DAY
    n = int(rng.poisson(sessions_per_day * days))
    w = restricted_weights(ctx, profile, tz, weekend, start, end)
    if n == 0 or w.sum() == 0:
        return np.empty(0)
    ts = session_times(rng, ctx, n, w, session_len, gap_median_s)
    return ts[(ts >= start) & (ts < end)]


def warm_up(
    ctx: Context,
    rng: np.random.Generator,
    born: float,
    until: float,
    *,
    sessions_per_day: float,
    profile: np.ndarray,
    tz: float,
) -> np.ndarray:
    """A new user's cover: a first session at sign-up (``born``), then a person's sessions.

    Starting at ``born`` makes the warm-up's length exact: harvesting that begins a day
    after ``born`` begins a day after the account's first request.
    """
    first = born + np.cumsum(
        np.r_[0.0, rng.lognormal(np.log(45.0), 0.8, size=int(rng.integers(1, 5)))]
    )
    later = human_sessions(
        ctx,
        rng,
        born + HOUR,
        until,
        sessions_per_day=sessions_per_day,
        profile=profile,
        tz=tz,
        weekend=1.3,
    )
    ts = np.sort(np.concatenate([first, later]))
    return ts[ts < until]


def controller_windows(
    rng: np.random.Generator, start: float, end: float, gap_h: tuple[float, float]
) -> np.ndarray:
    """When the operator's scheduler wakes its fleet: irregular gaps, never a daily cron.

    Random gaps (not a fixed period dividing the day) keep the fleet's activity from
    lining up with the hour of the day, so it is synchronised only *with itself*.
    """
    out, t = [], start + float(rng.uniform(0, gap_h[0])) * HOUR
    while t < end:
        out.append(t)
        t += float(rng.uniform(*gap_h)) * HOUR
    return np.asarray(out)


def window_activity(
    rng: np.random.Generator,
    windows: np.ndarray,
    minutes: float,
    participation: float,
    per_window: float,
    gap_median_s: float,
    active_from: float,
    active_to: float,
) -> np.ndarray:
    """One account inside the controller's windows: a short human-paced burst in some."""
    if len(windows) == 0:
        return np.empty(0)
    woken = windows[(windows >= active_from) & (rng.random(len(windows)) < participation)]
    lengths = rng.geometric(1.0 / max(per_window, 1.0), size=len(woken))
    first = woken + rng.uniform(0, minutes * 60.0, size=len(woken))
    out = []
    for t0, k in zip(first.tolist(), lengths.tolist(), strict=True):
        gaps = rng.lognormal(np.log(gap_median_s), 0.6, size=k)
        gaps[0] = 0.0
        out.append(t0 + np.cumsum(gaps))
    ts = np.sort(np.concatenate(out)) if out else np.empty(0)
    return ts[ts < active_to]


def tick_grid(start: float, end: float, tick_s: float, phase_s: float) -> np.ndarray:
    """The instants a scheduler with period ``tick_s`` fires (a period that does not divide
    a day, so the ticks drift against the clock of the day)."""
    return start + phase_s + np.arange(int((end - start - phase_s) // tick_s) + 1) * tick_s


# -- identity, infrastructure, parameters ------------------------------------------------------


def asys(asn: int) -> AS:
    for a in AS_TABLE:
        if a.asn == asn:
            return a
    raise ValueError(f"unknown ASN {asn} (known: {sorted(a.asn for a in AS_TABLE)})")


def sticky_home(
    ctx: Context, rng: np.random.Generator, asn: int | None = None
) -> tuple[int, float]:
    """One residential address for the account's whole life, and its timezone.

    With ``asn`` every account of a campaign sits in that one large ISP, which honest
    users share by the thousand: a per-ASN link is worthless there.
    """
    if asn is None:
        homes = as_by_kind("residential")
        home = homes[int(rng.integers(len(homes)))]
    else:
        home = asys(asn)
    return ctx.book.random(rng, home), TZ_BY_COUNTRY.get(home.country, 0.0)


def borrow_from_honest(
    ctx: Context, group: Group, plans: Sequence[Plan], homes: float, cards: float
) -> None:
    """Camouflage by links (FRAUDAR): tie accounts to honest customers' evidence.

    ``homes``: the share of accounts routed through an exit that an honest customer also
    uses (a residential proxy's exits are real subscribers' lines). ``cards``: the share
    paying with a card an honest account pays with (carded cards belong to someone). A
    detector that links by address or card then finds honest members in the campaign's
    cluster, and a cluster judged by its share of extracting members can be diluted.
    Draws from its own stream, so shares of 0 leave every other draw as it was.
    """
    if (homes <= 0.0 and cards <= 0.0) or not plans:
        return
    rng = np.random.default_rng([ctx.scenario.seed, group.index, 0xCA40])
    residential = {a.asn for a in as_by_kind("residential")}
    asn = group.params.get("asn")
    book = ctx.book
    exits = [
        i
        for i in range(ctx.honest_addresses)
        if book.asns[i] in residential and (asn is None or book.asns[i] == asn)
    ]
    honest_cards = ctx.honest_payments
    for plan in plans:
        if exits and rng.random() < homes:
            plan.events.put("ip", exits[int(rng.integers(len(exits)))])
        if honest_cards and rng.random() < cards:
            plan.account.payment = honest_cards[int(rng.integers(len(honest_cards)))]


def vendor_user_agent(rng: np.random.Generator) -> str:
    """A vendor SDK's user agent, the popular releases most likely: what honest users send."""
    weights = np.linspace(2.0, 1.0, len(SDK_USER_AGENTS))
    return str(choose(rng, list(SDK_USER_AGENTS), 1, weights.tolist())[0])


def sdk_defaults(rng: np.random.Generator, ev: Events, stream_share: float) -> None:
    """Request parameters as an SDK user leaves them: no logprobs, n = 1, default sampling."""
    style = rng.random()
    if style < 0.6:
        temp = np.full(ev.n, np.nan, dtype=COLUMNS["temperature"][0])
    else:
        temp = choose(rng, [0.7, 1.0], ev.n, [0.6, 0.4])
    ev.put("temperature", temp)
    ev.put("max_tokens", int(choose(rng, [1024, 2048, 4096], 1, [0.3, 0.4, 0.3])[0]))
    ev.put("stream", bool(rng.random() < stream_share))
