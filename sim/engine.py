"""Run a scenario: generate every group's columns, sort once by time, render JSON lines.

Output is a pure function of (scenario, seed, corpora): every account draws from its
own seeded stream, ids come from one seeded stream, and rendering is deterministic,
so the same seed gives byte-identical files.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from distillguard.sim.corpus import Corpus, load_corpora, split_corpora
from distillguard.sim.registry import archetype, attacker_archetypes, benign_archetypes
from distillguard.sim.scenario import Scenario
from distillguard.sim.text import simhash64
from distillguard.sim.traffic import COLUMNS, Account, Context, Events, Group

CHUNK = 4096  # small: orjson output buffers are large until freed


@dataclass
class Traffic:
    """A generated scenario: accounts with ground truth and time-sorted event columns."""

    ctx: Context
    accounts: list[Account]
    columns: dict[str, np.ndarray]
    acct: np.ndarray
    _fingerprints: dict[tuple[int, int], str] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return len(self.acct)

    def labels(self) -> list[dict[str, object]]:
        """CONTRACT §2 ground truth, one record per account.

        Accounts that posed as ordinary users first also carry ``harvest_start`` (RFC
        3339), an optional field evaluation measures detection delay from.
        """
        out: list[dict[str, object]] = []
        for a in self.accounts:
            rec: dict[str, object] = {
                "account_id": a.account_id,
                "label": a.label,
                "campaign": a.campaign,
                "archetype": a.archetype,
            }
            if a.harvest_start is not None:
                rec["harvest_start"] = _iso(a.harvest_start)
            out.append(rec)
        return out

    def counts_by_archetype(self) -> Counter[str]:
        per_account = np.bincount(self.acct, minlength=len(self.accounts))
        out: Counter[str] = Counter()
        for a, n in zip(self.accounts, per_account.tolist(), strict=True):
            out[a.archetype] += n
        return out

    def lines(self, chunk: int = CHUNK) -> Iterator[tuple[list[str], list[bytes]]]:
        """(account ids, JSON lines) in time order, ``chunk`` events at a time."""
        ctx, accounts = self.ctx, self.accounts
        texts, wraps, systems = ctx.texts, ctx.wraps.items, ctx.systems.items
        ips, asns, countries = ctx.book.ips, ctx.book.asns, ctx.book.countries
        uas = [str(u) for u in ctx.uas.items]
        models = [m.name for m in ctx.scenario.models]
        key_names = [[f"key_{a.account_id[5:]}_{k}" for k in range(a.keys)] for a in accounts]
        prefix = run_prefix(ctx.scenario.name, ctx.scenario.corpus_split, ctx.scenario.seed)
        dumps, fp = orjson.dumps, self._fingerprint
        for lo in range(0, self.events, chunk):
            hi = min(lo + chunk, self.events)
            c = {name: col[lo:hi].tolist() for name, col in self.columns.items() if name != "ts"}
            millis = np.rint(self.columns["ts"][lo:hi] * 1000).astype(np.int64)
            stamps = np.datetime_as_string(millis.astype("datetime64[ms]"), timezone="UTC").tolist()
            acct_ids, out = [], []
            rows = zip(
                range(lo, hi),
                self.acct[lo:hi].tolist(),
                stamps,
                c["model"],
                c["text"],
                c["wrap"],
                c["system"],
                c["in_tok"],
                c["out_tok"],
                c["status"],
                c["ip"],
                c["ua"],
                c["key"],
                c["temperature"],
                c["max_tokens"],
                c["n"],
                c["logprobs"],
                c["top_logprobs"],
                c["tool_count"],
                c["stream"],
                c["latency_ms"],
                strict=True,
            )
            for (
                i,
                a,
                ts,
                model,
                text,
                wrap,
                system,
                in_tok,
                out_tok,
                status,
                ip,
                ua,
                key,
                temp,
                max_tok,
                n,
                logprobs,
                top_lp,
                tools,
                stream,
                latency,
            ) in rows:
                acc = accounts[a]
                ev: dict[str, object] = {
                    "event_id": f"{prefix}{i:09d}",
                    "ts": ts,
                    "account_id": acc.account_id,
                    "model": models[model],
                    "input_tokens": in_tok,
                    "output_tokens": out_tok,
                    "status": status,
                    "api_key_id": key_names[a][key],
                    "org_id": acc.org_id,
                }
                if not acc.org_id:  # CONTRACT §1: optional; some honest accounts have none
                    del ev["org_id"]
                if ip >= 0:
                    ev["ip"] = ips[ip]
                    ev["asn"] = asns[ip]
                    ev["country"] = countries[ip]
                if ua >= 0:
                    ev["user_agent"] = uas[ua]
                ev["payment_fingerprint"] = acc.payment
                ev["endpoint"] = acc.endpoint
                if acc.redacted:
                    ev["prompt_fingerprint"] = fp(text, wrap)
                else:
                    pre, suf = wraps[wrap]
                    ev["prompt"] = pre + texts[text] + suf if wrap else texts[text]
                    if system >= 0:
                        ev["system_prompt"] = systems[system]
                if max_tok >= 0:
                    ev["max_tokens"] = max_tok
                if temp == temp:
                    ev["temperature"] = round(temp, 3)
                if n > 0:
                    ev["n"] = n
                if logprobs >= 0:
                    ev["logprobs"] = bool(logprobs)
                if top_lp >= 0:
                    ev["top_logprobs"] = top_lp
                if tools >= 0:
                    ev["tool_count"] = tools
                if stream >= 0:
                    ev["stream"] = bool(stream)
                if latency == latency:
                    ev["latency_ms"] = round(latency, 1)
                acct_ids.append(acc.account_id)
                out.append(dumps(ev))
            yield acct_ids, out

    def _fingerprint(self, text: int, wrap: int) -> str:
        key = (text, wrap)
        fp = self._fingerprints.get(key)
        if fp is None:
            pre, suf = self.ctx.wraps.items[wrap]
            fp = self._fingerprints[key] = simhash64(pre + self.ctx.texts[text] + suf)
        return fp


def run_prefix(name: str, corpus_split: str, seed: int) -> str:
    """The ``event_id`` prefix naming the run (scenario, corpus split, seed).

    Evaluation reads it back (``evaluation.protocol.run_of``) to refuse a held-out figure
    on a tuning run; runs on every corpus row keep the original ``name-seed-`` form.

    >>> run_prefix("small", "all", 7), run_prefix("adaptive", "heldout", 1101)
    ('small-7-', 'adaptive.heldout-1101-')
    """
    return f"{name}-{seed}-" if corpus_split == "all" else f"{name}.{corpus_split}-{seed}-"


def _iso(ts: float) -> str:
    millis = np.int64(round(ts * 1000))
    return str(np.datetime_as_string(millis.astype("datetime64[ms]"), timezone="UTC"))


def groups_of(scenario: Scenario) -> list[Group]:
    """Benign archetypes first, then campaigns; the index seeds each group's streams."""
    groups: list[Group] = []
    benign, attackers = benign_archetypes(), attacker_archetypes()
    for arch, params in scenario.benign.items():
        merged = {**benign[arch].defaults, **params}
        groups.append(Group(len(groups) + 1, arch, int(params["accounts"]), merged))
    for camp in scenario.campaigns:
        merged = {**attackers[camp.archetype].defaults, **camp.params}
        groups.append(Group(len(groups) + 1, camp.archetype, camp.accounts, merged, camp.id))
    return groups


def generate(scenario: Scenario, corpora: dict[str, Corpus] | None = None) -> Traffic:
    """Every account's traffic, merged into one time-ordered set of columns."""
    corpora = split_corpora(corpora or load_corpora(scenario.data_dir), scenario.corpus_split)
    ctx = Context(scenario, corpora)
    accounts: list[Account] = []
    parts: list[Events] = []
    honest_seen = False
    for group in groups_of(scenario):
        if group.campaign is not None and not honest_seen:
            # benign groups come first: what the book and the accounts hold now is theirs
            honest_seen = True
            ctx.honest_addresses = len(ctx.book.ips)
            ctx.honest_payments = list(dict.fromkeys(a.payment for a in accounts))
        arch = archetype(group.archetype)
        rng = np.random.default_rng([scenario.seed, group.index, 7])
        for account, events in arch.generate(ctx, group, rng):
            accounts.append(account)
            parts.append(events)
    # An account that never sent a request is invisible to any detector: leave it out.
    active = [i for i, e in enumerate(parts) if e.n > 0]
    accounts = [accounts[i] for i in active]
    parts = [parts[i] for i in active]
    acct = np.repeat(np.arange(len(accounts), dtype=np.int32), [e.n for e in parts])
    columns = {
        name: np.concatenate([e.column(name) for e in parts]) if parts else np.empty(0, dtype=dtype)
        for name, (dtype, _) in COLUMNS.items()
    }
    order = np.lexsort((acct, columns["ts"]))
    # Round to the millisecond the output carries, so file order equals time order.
    columns = {name: col[order] for name, col in columns.items()}
    columns["ts"] = np.round(columns["ts"], 3)
    return Traffic(ctx=ctx, accounts=accounts, columns=columns, acct=acct[order])


@dataclass(frozen=True)
class SimStats:
    events: int
    accounts: int
    seconds: float
    by_archetype: dict[str, int]


def write_files(
    traffic: Traffic,
    events_path: Path | None,
    labels_path: Path | None,
    progress: Callable[[int], None] | None = None,
) -> None:
    if labels_path is not None:
        labels_path.parent.mkdir(parents=True, exist_ok=True)
        labels_path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in traffic.labels()))
    if events_path is not None:
        events_path.parent.mkdir(parents=True, exist_ok=True)
        with events_path.open("wb") as fh:
            for _, lines in traffic.lines():
                fh.write(b"\n".join(lines) + b"\n")
                if progress:
                    progress(len(lines))


def simulate(
    scenario: Scenario,
    events_path: Path,
    labels_path: Path,
    progress: Callable[[int], None] | None = None,
) -> SimStats:
    """Generate ``scenario`` and write events and labels; returns what was written."""
    t0 = time.perf_counter()
    traffic = generate(scenario)
    write_files(traffic, events_path, labels_path, progress)
    return SimStats(
        traffic.events,
        len(traffic.accounts),
        time.perf_counter() - t0,
        dict(traffic.counts_by_archetype()),
    )


def publish(
    traffic: Traffic,
    send: Callable[[str, bytes], None],
    rate: float,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send events in time order at ``rate`` events/s: simulated time runs compressed.

    Events keep their simulated timestamps; only the wall-clock pacing changes.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    sent, t0 = 0, clock()
    for keys, lines in traffic.lines(chunk=max(100, min(CHUNK, int(rate)))):
        for key, line in zip(keys, lines, strict=True):
            send(key, line)
            sent += 1
            if sent % 256 == 0:
                ahead = sent / rate - (clock() - t0)
                if ahead > 0:
                    sleep(ahead)
        if progress:
            progress(len(lines))
    return sent
