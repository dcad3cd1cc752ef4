"""Machinery every archetype shares: the simulation context, timing and event columns.

Traffic is generated per account as numpy columns (one array per event field),
never as per-event Python objects; the engine concatenates all accounts, sorts by
time once, and only then renders JSON. That keeps a million-event scenario in
seconds and its memory in tens of megabytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distillguard.sim.corpus import Corpus
from distillguard.sim.network import AddressBook
from distillguard.sim.scenario import Scenario
from distillguard.sim.text import tokens_for_chars

HOUR = 3600.0
DAY = 86_400.0
NEVER = float("inf")

#: Event columns: dtype and the value meaning "field absent from the event".
COLUMNS: dict[str, tuple[Any, Any]] = {
    "ts": (np.float64, np.nan),
    "model": (np.int16, 0),
    "text": (np.int32, 0),
    "wrap": (np.int16, 0),
    "system": (np.int16, -1),
    "in_tok": (np.int32, 0),
    "out_tok": (np.int32, 0),
    "status": (np.int16, 200),
    "ip": (np.int32, -1),
    "ua": (np.int16, -1),
    "key": (np.int16, 0),
    "temperature": (np.float32, np.nan),
    "top_p": (np.float32, np.nan),
    "max_tokens": (np.int32, -1),
    "n": (np.int16, 0),
    "logprobs": (np.int8, -1),
    "top_logprobs": (np.int16, -1),
    "tool_count": (np.int16, -1),
    "stream": (np.int8, -1),
    "latency_ms": (np.float32, np.nan),
}


class Interner:
    """Strings (or tuples) to small integers, in first-seen order."""

    def __init__(self, first: Any = None) -> None:
        self.items: list[Any] = []
        self._index: dict[Any, int] = {}
        if first is not None:
            self.add(first)

    def add(self, item: Any) -> int:
        idx = self._index.get(item)
        if idx is None:
            idx = self._index[item] = len(self.items)
            self.items.append(item)
        return idx

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class Account:
    """An account's fixed profile and ground truth."""

    account_id: str
    archetype: str
    label: str
    campaign: str | None
    org_id: str
    payment: str
    endpoint: str
    redacted: bool = False
    keys: int = 1
    #: When a distiller that first posed as an ordinary user started harvesting (epoch
    #: seconds); ``None`` for accounts that harvest from their first request. Evaluation
    #: measures detection delay from here, so a warm-up does not pass for a slow detector.
    harvest_start: float | None = None


@dataclass
class Group:
    """A set of accounts generated together: one benign archetype, or one campaign."""

    index: int
    archetype: str
    accounts: int
    params: dict[str, Any]
    campaign: str | None = None


class Context:
    """Everything archetypes draw from: corpora as one text table, infrastructure, models."""

    def __init__(self, scenario: Scenario, corpora: dict[str, Corpus]) -> None:
        self.scenario = scenario
        self.start = scenario.start
        self.end = scenario.end
        self.hours = int(np.ceil(scenario.days * 24))
        self.texts: list[str] = []
        self.ranges: dict[str, tuple[int, int]] = {}
        lengths, responses = [], []
        for name, corpus in corpora.items():
            lo = len(self.texts)
            self.texts.extend(corpus.prompts)
            self.ranges[name] = (lo, len(self.texts))
            lengths.append(corpus.lengths)
            responses.append(corpus.response_chars)
        self.text_len = np.concatenate(lengths)
        self.text_resp = np.concatenate(responses)
        self.book = AddressBook()
        #: the book's first entries are honest users' addresses (the engine generates
        #: benign groups first and sets this before the first campaign)
        self.honest_addresses = 0
        #: honest accounts' cards, in the order they were issued (set with the above)
        self.honest_payments: list[str] = []
        self.uas = Interner()
        self.systems = Interner()
        self.wraps = Interner(("", ""))  # index 0: the prompt as is
        self.release = scenario.release()
        self.flagship = scenario.model_index("flagship")
        self.mini = next(
            (i for i, m in enumerate(scenario.models) if m.role == "mini"), self.flagship
        )
        self._ids = np.random.default_rng([scenario.seed, 0xACC7])
        self._issued: set[str] = set()

    # -- identities ---------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        """A random-looking unique id: nothing in an id hints at the archetype."""
        while True:
            ident = f"{prefix}_{int(self._ids.integers(0, 2**40)):010x}"
            if ident not in self._issued:
                self._issued.add(ident)
                return ident

    def wrap(self, template: str) -> int:
        """Intern a template with one ``{p}`` slot for the corpus prompt."""
        prefix, _, suffix = template.partition("{p}")
        return self.wraps.add((prefix, suffix))

    def wrap_len(self) -> np.ndarray:
        return np.asarray([len(a) + len(b) for a, b in self.wraps.items], dtype=np.int64)

    def system_len(self) -> np.ndarray:
        return np.asarray([len(s) for s in self.systems.items] + [0], dtype=np.int64)

    def pick(self, rng: np.random.Generator, corpus: str, n: int) -> np.ndarray:
        lo, hi = self.ranges[corpus]
        return rng.integers(lo, hi, size=n).astype(np.int32)

    def pick_mix(self, rng: np.random.Generator, mix: dict[str, float], n: int) -> np.ndarray:
        """Texts drawn from several corpora with the given shares."""
        names = list(mix)
        p = np.asarray([mix[k] for k in names], dtype=np.float64)
        which = rng.choice(len(names), size=n, p=p / p.sum())
        out = np.empty(n, dtype=np.int32)
        for i, name in enumerate(names):
            sel = which == i
            out[sel] = self.pick(rng, name, int(sel.sum()))
        return out


# -- timing ------------------------------------------------------------------------------


def hour_weights(ctx: Context, profile: np.ndarray, tz: float, weekend: float = 1.0) -> np.ndarray:
    """Probability of each simulated hour for an account in timezone ``tz`` (UTC offset)."""
    hours = np.arange(ctx.hours, dtype=np.float64)
    local = np.floor(hours + tz).astype(np.int64)
    start_dow = int(((ctx.start // DAY) + 3) % 7)  # 1970-01-01 was a Thursday (3)
    dow = (start_dow + local // 24) % 7
    w = profile[local % 24] * np.where(dow >= 5, weekend, 1.0)
    return w / w.sum()


def poisson_times(
    rng: np.random.Generator, ctx: Context, n: int, weights: np.ndarray
) -> np.ndarray:
    """``n`` arrival times of an inhomogeneous Poisson process with hourly ``weights``."""
    hours = rng.choice(len(weights), size=n, p=weights)
    return np.sort(ctx.start + (hours + rng.random(n)) * HOUR)


def session_times(
    rng: np.random.Generator,
    ctx: Context,
    sessions: int,
    weights: np.ndarray,
    mean_len: float,
    gap_median_s: float,
    gap_sigma: float = 0.8,
) -> np.ndarray:
    """Human sessions: starts follow ``weights``; within one, requests are think-time apart."""
    if sessions <= 0:
        return np.empty(0)
    starts = poisson_times(rng, ctx, sessions, weights)
    lengths = rng.geometric(1.0 / max(mean_len, 1.0), size=sessions)  # >= 1, mean mean_len
    total = int(lengths.sum())
    gaps = rng.lognormal(np.log(gap_median_s), gap_sigma, size=total)
    first = np.cumsum(lengths) - lengths
    gaps[first] = 0.0
    csum = np.cumsum(gaps)
    times = np.repeat(starts, lengths) + csum - np.repeat(csum[first], lengths)
    return np.sort(times[times < ctx.end])


def regular_times(
    rng: np.random.Generator, start: float, end: float, interval: float, jitter: float
) -> np.ndarray:
    """Scripted, machine-regular arrivals: fixed ``interval`` with relative ``jitter``."""
    n = int(max(0.0, end - start) / interval)
    gaps = interval * (1.0 + jitter * rng.uniform(-1.0, 1.0, size=n))
    times = start + np.cumsum(gaps)
    return times[times < end]


def lognormal_volume(rng: np.random.Generator, median: float, sigma: float) -> float:
    return float(rng.lognormal(np.log(median), sigma))


# -- events -----------------------------------------------------------------------------


@dataclass
class Events:
    """One account's events as columns; absent fields keep their COLUMNS default."""

    ts: np.ndarray
    cols: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ts = np.asarray(self.ts, dtype=np.float64)
        self.cols["ts"] = self.ts

    @property
    def n(self) -> int:
        return len(self.ts)

    def put(self, name: str, value: Any) -> None:
        dtype, _ = COLUMNS[name]
        arr = np.asarray(value, dtype=dtype)
        self.cols[name] = np.broadcast_to(arr, (self.n,)).copy() if arr.ndim == 0 else arr

    def column(self, name: str) -> np.ndarray:
        dtype, absent = COLUMNS[name]
        col = self.cols.get(name)
        return col if col is not None else np.full(self.n, absent, dtype=dtype)

    def subset(self, keep: np.ndarray) -> Events:
        out = Events(self.ts[keep])
        for name, col in self.cols.items():
            if name != "ts":
                out.cols[name] = col[keep]
        return out


def choose(
    rng: np.random.Generator, options: list[Any], n: int, p: list[float] | None = None
) -> np.ndarray:
    idx = rng.choice(len(options), size=n, p=None if p is None else np.asarray(p) / sum(p))
    return np.asarray(options)[idx]


def assign_models(
    ctx: Context,
    rng: np.random.Generator,
    ts: np.ndarray,
    *,
    mini_share: float,
    adopt_at: float = NEVER,
    adopt_share: float = 0.0,
) -> np.ndarray:
    """Model per event: flagship or mini; ``adopt_share`` moves to the release at ``adopt_at``."""
    models = np.where(rng.random(len(ts)) < mini_share, ctx.mini, ctx.flagship).astype(np.int16)
    if ctx.release is not None and adopt_share > 0 and adopt_at < NEVER:
        rel_idx, rel_ts = ctx.release
        moved = (ts >= max(adopt_at, rel_ts)) & (rng.random(len(ts)) < adopt_share)
        models[moved] = rel_idx
    return models


def adoption_time(
    rng: np.random.Generator, ctx: Context, probability: float, mean_delay_h: float
) -> float:
    """When an account starts using the newly released model (never, for most)."""
    if ctx.release is None or rng.random() >= probability:
        return NEVER
    return ctx.release[1] + rng.exponential(mean_delay_h) * HOUR


def finish(
    ctx: Context,
    ev: Events,
    rng: np.random.Generator,
    *,
    verbosity: float | np.ndarray = 1.0,
    reasoning_chars: float | np.ndarray = 0.0,
    fallback_response_chars: float = 600.0,
    context_tokens: float | np.ndarray = 0.0,
    tokens_per_tool: int = 110,
) -> Events:
    """Token counts consistent with the text, and a latency consistent with the tokens.

    Input: prompt + wrapper + system prompt at ~4 chars/token, plus declared tools and
    any conversation context. Output: the corpus's reference-answer length where it
    has one (else a draw around ``fallback_response_chars``), times ``verbosity``, plus
    a reasoning trace around ``reasoning_chars`` where one was elicited, capped by
    ``max_tokens``.
    """
    text = ev.column("text")
    chars = ctx.text_len[text] + ctx.wrap_len()[ev.column("wrap")]
    chars = chars + ctx.system_len()[ev.column("system")]
    tools = np.maximum(ev.column("tool_count"), 0).astype(np.int64)
    in_tok = (
        tokens_for_chars(chars)
        + tools * tokens_per_tool
        + np.asarray(context_tokens, dtype=np.int64)
    )
    resp = ctx.text_resp[text]
    missing = np.isnan(resp)
    if missing.any():
        resp = resp.copy()
        resp[missing] = rng.lognormal(np.log(fallback_response_chars), 0.6, size=int(missing.sum()))
    resp = resp * np.asarray(verbosity) * rng.lognormal(0.0, 0.25, size=ev.n)
    reasoning = np.broadcast_to(np.asarray(reasoning_chars, dtype=np.float64), (ev.n,))
    resp = resp + np.where(reasoning > 0, np.maximum(reasoning, 1.0), 0.0) * rng.lognormal(
        0.0, 0.5, size=ev.n
    )
    out_tok = tokens_for_chars(resp)
    cap = ev.column("max_tokens")
    out_tok = np.where(cap > 0, np.minimum(out_tok, np.maximum(cap, 1)), out_tok)
    status = ev.column("status")
    out_tok = np.where(status == 200, out_tok, 0)
    ev.put("in_tok", in_tok)
    ev.put("out_tok", out_tok)
    latency = 250.0 + out_tok * rng.uniform(8.0, 20.0, size=ev.n) + in_tok * 0.05
    ev.put("latency_ms", np.where(status == 200, latency, rng.uniform(20, 120, size=ev.n)).round(1))
    return ev


def with_retries(rng: np.random.Generator, ev: Events, rate_limited: float) -> Events:
    """A share of requests get 429 and are retried 1-4 s later (an automation fingerprint)."""
    if rate_limited <= 0 or ev.n == 0:
        return ev
    hit = rng.random(ev.n) < rate_limited
    if not hit.any():
        return ev
    retry = ev.subset(hit)
    retry.ts = retry.ts + rng.uniform(1.0, 4.0, size=retry.n)
    retry.cols["ts"] = retry.ts
    status = ev.column("status").copy()
    status[hit] = 429
    ev.put("status", status)
    merged = Events(np.concatenate([ev.ts, retry.ts]))
    for name in set(ev.cols) | set(retry.cols):
        if name != "ts":
            merged.cols[name] = np.concatenate([ev.column(name), retry.column(name)])
    order = np.argsort(merged.ts, kind="stable")
    return merged.subset(order)


Generator = Callable[[Context, Group, np.random.Generator], list[tuple[Account, Events]]]


@dataclass(frozen=True)
class Archetype:
    """A kind of account: its label, tunable defaults, and how to generate its traffic."""

    name: str
    label: str
    defaults: dict[str, Any]
    generate: Generator
    doc: str = ""


def group_rng(ctx: Context, group: Group, account: int) -> np.random.Generator:
    """Independent stream per (group, account): adding a group never reshuffles another."""
    return np.random.default_rng([ctx.scenario.seed, group.index, account])
