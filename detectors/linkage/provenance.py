"""Content provenance: is a group of accounts fed by one dispatcher sweeping one dataset?

An operator pays for every answer, so its dispatcher hands each item of its dataset to
one account once per sweep: the accounts of one campaign *never* send the same item
within a sweep, where accounts drawing on their own from the same public source would
collide by chance. Honest groups do the opposite (an evaluation vendor re-runs one
benchmark from twenty accounts every night, a course shares its assignment items).
Wording is free, so two things are needed:

- an **item key** that survives rewording (:class:`ItemKeyer`): word trigrams of the
  prompt, minus *boilerplate* (trigrams already seen in at least ``boilerplate_min``
  distinct prompts: openers, closers, reasoning requests, a tool's description, common
  phrasings) and every trigram touching a word of one, and the smallest hash of what
  is left (a one-permutation MinHash). Two
  wrappings of one item keep the item's own trigrams and share the key; two items do
  not. Redacted prompts (a ``prompt_fingerprint`` only) get no key.
- a **group statistic** (:meth:`ProvenanceSketch.group_score`): item collisions among
  the group's members (two members sending one item within a window) observed, against
  the number expected if each member drew independently from the population's item
  distribution. The expectation uses only how often *outsiders* send each of the
  group's items, so a group whose prompts nobody else sends (its own novel text, a
  private dataset) expects nothing and is never called a sweep; a public dataset swept
  by one dispatcher expects collisions it never shows. Windows shorter than the whole
  history keep the test valid past a first sweep (a dispatcher re-asks an item only a
  full sweep later).

The expectation is conservative: the population mixes many sources, so the chance
that two independent draws from *one* source collide is underestimated, never over
(apart from count-sketch collisions, which two hash rows keep small).

Bounded: two rows of ``2**16`` 16-bit item counters (256 KB), ``2**18`` 8-bit
distinct-prompt counters for boilerplate (256 KB) and the crcs of the last 4,096
prompts counted, for the whole population; per account the last ``keys_per_account``
(key, time) pairs (8 bytes each, 256 B at 32).
"""

from __future__ import annotations

import math
import re
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from distillguard.detectors.state import ProvenanceState, le_array, le_bytes

_WORD = re.compile(rb"[a-z0-9]+")
#: characters of a prompt read for its key
_MAX_CHARS = 1200
_M1, _M2, _M3 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D
_U32 = 0xFFFFFFFF
_SECOND_ROW = 0x27D4EB2F


class ItemKeyer:
    """The item a prompt wraps, as a 32-bit key, however the prompt is worded around it.

    Parameters
    ----------
    boilerplate_min
        A trigram seen in at least this many distinct prompts is boilerplate (a wrapper
        phrase, a tool description, a common phrasing) and does not make the key. The
        same prompt sent again does not count twice (a benchmark re-run stays one item).
    bits
        ``2**bits`` distinct-prompt counters (shared by trigrams whose hashes collide).

    Examples
    --------
    >>> keyer = ItemKeyer(boilerplate_min=3)
    >>> for i in range(4):  # the wrapper becomes boilerplate once seen with 3 items
    ...     _ = keyer.key(f"Lay out every stage of how you get there. Item number {i} here.")
    >>> a = keyer.key("Write a function that merges two sorted linked lists in place.")
    >>> b = keyer.key("Lay out every stage of how you get there. "
    ...               "Write a function that merges two sorted linked lists in place.")
    >>> c = keyer.key("Write a shell script that renames every file in a folder.")
    >>> a == b, a == c, keyer.key("Hi!")
    (True, False, None)
    """

    def __init__(self, boilerplate_min: int = 24, bits: int = 18, recent: int = 4096) -> None:
        self.boilerplate_min = min(255, boilerplate_min)
        self._mask = (1 << bits) - 1
        self._seen = array("B", bytes(1 << bits))
        #: crcs of recently counted prompts (insertion order), so an exact repeat does
        #: not count again: a benchmark re-run or a shared assignment stays one item
        self._recent: dict[int, None] = {}
        self._recent_max = recent

    def key(self, prompt: str) -> int | None:
        """The prompt's item key (and the prompt counted as seen), or None if too short.

        Only the first ``_MAX_CHARS`` characters are read: a wrapped item sits near the
        start, and a long file context must not cost in proportion to its length.
        """
        text = prompt[:_MAX_CHARS].lower().encode("utf-8", "replace")
        words = _WORD.findall(text)
        n = len(words) - 2
        if n < 1:
            return None
        h = list(map(zlib.crc32, words))
        trigrams = [
            ((x * _M1) ^ (y * _M2) ^ (z * _M3)) & _U32
            for x, y, z in zip(h, h[1:], h[2:], strict=False)
        ]
        crc = zlib.crc32(text)
        recent = self._recent
        seen, mask, common = self._seen, self._mask, self.boilerplate_min
        if crc not in recent:  # an exact repeat is not a new context for its trigrams
            recent[crc] = None
            if len(recent) > self._recent_max:
                del recent[next(iter(recent))]
            for t in trigrams:
                slot = t & mask
                if seen[slot] < 255:
                    seen[slot] += 1
        counts = [seen[t & mask] for t in trigrams]
        # a word inside any boilerplate trigram is the wrapper's: the trigrams that straddle
        # the seam between wrapper and item ("… own line. Write a") are dropped with it
        clean = [c < common for c in counts]
        if not all(clean):
            near = clean.copy()
            for i, ok in enumerate(clean):
                if not ok:
                    near[max(0, i - 2) : i + 3] = [False] * (min(n, i + 3) - max(0, i - 2))
            clean = near
        own = [c for c, ok in zip(counts, clean, strict=True) if ok]
        if own:
            # the item's own trigrams are its rarest: phrases it shares with a few other
            # items ("the factorial of") are seen more often, and would key them together
            rarest = 2 * min(own)
            return min(
                t for t, c, ok in zip(trigrams, counts, clean, strict=True) if ok and c <= rarest
            )
        # nothing but common phrases ("a function that", "of a given number"): the least
        # common of them still tell one such item from another better than the wrapper
        rare = [t for t, c in zip(trigrams, counts, strict=True) if c < 4 * common]
        return min(rare) if rare else min(trigrams)

    def to_state(self) -> tuple[bytes, list[int]]:
        return self._seen.tobytes(), list(self._recent)

    def load(self, seen: bytes, recent: list[int]) -> None:
        """Restore :meth:`to_state`; ValueError if the table does not match ``bits``."""
        if len(seen) != self._mask + 1:
            raise ValueError("provenance boilerplate table of the wrong size")
        self._seen = array("B", seen)
        self._recent = dict.fromkeys(recent)


@dataclass(frozen=True)
class GroupProvenance:
    """What :meth:`ProvenanceSketch.group_score` found for one group of accounts."""

    #: -log10 of the chance of so few collisions, when the group looks like a sweep; else 0
    score: float
    observed: int
    expected: float
    #: the window (seconds; 0: the whole remembered history) the figures are for
    window_s: float
    members: int
    sends: int

    def explanation(self) -> str:
        span = f"within {self.window_s / 3600:g} h" if self.window_s else "overall"
        return (
            f"{self.observed} item collisions {span} among {self.members} members "
            f"({self.sends} keyed prompts), {self.expected:.1f} expected if each drew "
            "independently from the population"
        )


_NOTHING = GroupProvenance(0.0, 0, 0.0, 0.0, 0, 0)


class ProvenanceSketch:
    """Item counts of the population and each account's recent items; scores groups.

    river-style: :meth:`learn_one` per keyed prompt, :meth:`group_score` for a group.

    Parameters
    ----------
    keys_per_account
        (key, time) pairs remembered per account, the most recent.
    bits
        Each of the two count rows has ``2**bits`` counters.
    windows_s
        Windows (seconds; 0 = everything remembered) within which collisions are
        counted; the most surprising one decides, penalised for the number tried.
    min_expected
        Fewer expected collisions than this is too little volume to judge.
    max_ratio
        A sweep shows at most this share of the expected collisions.

    Examples
    --------
    Forty outsiders draw from a 300-item source at random; twenty accounts of one
    dispatcher share its 300 items out, each once; twenty more draw at random:

    >>> import random
    >>> rng = random.Random(1)
    >>> sk = ProvenanceSketch()
    >>> for a in range(40):
    ...     for t in range(30):
    ...         sk.learn_one(f"out{a}", rng.randrange(300), 1000.0 * t)
    >>> items = rng.sample(range(300), 300)
    >>> for i, item in enumerate(items):
    ...     sk.learn_one(f"sweep{i % 20}", item, 100.0 * i)
    >>> for a in range(20):
    ...     for t in range(15):
    ...         sk.learn_one(f"indep{a}", rng.randrange(300), 2000.0 * t)
    >>> sweep = sk.group_score([f"sweep{a}" for a in range(20)])
    >>> indep = sk.group_score([f"indep{a}" for a in range(20)])
    >>> sweep.observed, sweep.score > 4, indep.score
    (0, True, 0.0)
    """

    def __init__(
        self,
        keys_per_account: int = 32,
        bits: int = 16,
        windows_s: Sequence[float] = (21_600.0, 86_400.0, 0.0),
        min_expected: float = 6.0,
        max_ratio: float = 0.5,
    ) -> None:
        self.keys_per_account = keys_per_account
        self.windows_s = tuple(windows_s)
        self.min_expected = min_expected
        self.max_ratio = max_ratio
        self._mask = (1 << bits) - 1
        self._rows = (array("H", bytes(2 << bits)), array("H", bytes(2 << bits)))
        self.total = 0
        #: account -> [key, ts, key, ts, ...], oldest first
        self._sends: dict[str, array[int]] = {}

    def _count(self, key: int) -> int:
        a, b = self._rows
        return min(a[key & self._mask], b[((key * _SECOND_ROW) >> 7) & self._mask])

    def learn_one(self, account: str, key: int, ts: float) -> None:
        """One keyed prompt of ``account`` at event time ``ts``."""
        a, b = self._rows
        i, j = key & self._mask, ((key * _SECOND_ROW) >> 7) & self._mask
        if a[i] < 65535:  # saturating: a very popular item stays very popular
            a[i] += 1
        if b[j] < 65535:
            b[j] += 1
        self.total += 1
        sends = self._sends.get(account)
        if sends is None:
            sends = self._sends[account] = array("I")
        sends.append(key)
        sends.append(max(0, min(_U32, int(ts))))
        if len(sends) > 2 * self.keys_per_account:
            del sends[:2]

    def forget(self, account: str) -> None:
        """Drop an account's items (it went idle); the population counts keep them."""
        self._sends.pop(account, None)

    def items_of(self, account: str) -> int:
        sends = self._sends.get(account)
        return 0 if sends is None else len(sends) // 2

    def group_score(self, members: Iterable[str]) -> GroupProvenance:
        """Whether ``members`` look like one dispatcher's sweep of a shared source."""
        sends: list[tuple[int, int, int]] = []  # (ts, member index, key)
        for m, aid in enumerate(members):
            s = self._sends.get(aid)
            if s is not None:
                sends.extend((s[i + 1], m, s[i]) for i in range(0, len(s), 2))
        n_members = len({m for _, m, _ in sends})
        if n_members < 2:
            return _NOTHING
        sends.sort()
        own: dict[int, int] = {}
        by_key: dict[int, list[tuple[int, int]]] = {}
        for ts, m, key in sends:
            own[key] = own.get(key, 0) + 1
            by_key.setdefault(key, []).append((ts, m))
        outside_total = self.total - len(sends)
        if outside_total <= 0:
            return _NOTHING
        # chance that one independent draw hits each send's item, from outsiders' counts
        p = [max(0, self._count(key) - own[key]) / outside_total for _, _, key in sends]
        times = [ts for ts, _, _ in sends]
        member_times: dict[int, list[int]] = {}
        for ts, m, _ in sends:
            member_times.setdefault(m, []).append(ts)
        best = _NOTHING
        penalty = math.log10(len(self.windows_s)) if self.windows_s else 0.0
        for window in self.windows_s:
            expected = 0.0
            for (ts, m, _), pk in zip(sends, p, strict=True):
                if pk <= 0.0:
                    continue
                if window:
                    lo, hi = ts - window, ts + window
                    mine = member_times[m]
                    others = (bisect_right(times, hi) - bisect_left(times, lo)) - (
                        bisect_right(mine, hi) - bisect_left(mine, lo)
                    )
                else:
                    others = len(sends) - len(member_times[m])
                expected += others * pk
            expected /= 2.0
            if expected < self.min_expected:
                continue
            limit = int(self.max_ratio * expected)
            observed = 0
            for hits in by_key.values():
                if len(hits) > 1:
                    observed += _collisions(hits, window, limit - observed + 1)
                    if observed > limit:
                        break
            if observed > limit:
                continue
            score = max(0.0, -_log10_poisson_cdf(observed, expected) - penalty)
            if score > best.score:
                best = GroupProvenance(score, observed, expected, window, n_members, len(sends))
        if best.score > 0:
            return best
        return GroupProvenance(0.0, *self._overall(sends, by_key, p), n_members, len(sends))

    def _overall(
        self,
        sends: list[tuple[int, int, int]],
        by_key: dict[int, list[tuple[int, int]]],
        p: list[float],
    ) -> tuple[int, float, float]:
        """(observed, expected, 0) over everything remembered, for the explanation."""
        per_member: dict[int, int] = {}
        for _, m, _ in sends:
            per_member[m] = per_member.get(m, 0) + 1
        expected = sum(
            (len(sends) - per_member[m]) * pk for (_, m, _), pk in zip(sends, p, strict=True)
        )
        observed = 0
        for hits in by_key.values():
            if len(hits) > 1:
                mine: dict[int, int] = {}
                for _, m in hits:
                    mine[m] = mine.get(m, 0) + 1
                observed += _pairs(len(hits)) - sum(_pairs(c) for c in mine.values())
        return observed, expected / 2.0, 0.0

    # -- state ---------------------------------------------------------------------------

    def to_state(self, keyer: ItemKeyer) -> ProvenanceState:
        seen, recent = keyer.to_state()
        return ProvenanceState(
            total=self.total,
            counts_a=le_bytes(self._rows[0]),
            counts_b=le_bytes(self._rows[1]),
            sends={a: le_bytes(s) for a, s in sorted(self._sends.items())},
            seen=seen,
            recent=recent,
        )

    def load(self, state: ProvenanceState, keyer: ItemKeyer) -> None:
        """Restore :meth:`to_state` (sketch and keyer); ValueError on a size mismatch."""
        size = 2 * (self._mask + 1)
        if len(state.counts_a) != size or len(state.counts_b) != size:
            raise ValueError("provenance count rows of the wrong size")
        if any(len(s) % 8 for s in state.sends.values()):
            raise ValueError("provenance sends must be (key, ts) pairs")
        keyer.load(state.seen, state.recent)
        rows = (le_array("H", state.counts_a), le_array("H", state.counts_b))
        sends = {aid: le_array("I", raw) for aid, raw in state.sends.items()}
        self._rows, self._sends, self.total = rows, sends, state.total


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _collisions(hits: list[tuple[int, int]], window: float, stop: int) -> int:
    """Pairs of sends of one item by two different members within ``window`` (0: any),
    counted up to ``stop`` (a group far above a sweep's count need not be counted out)."""
    out = 0
    for i, (ti, mi) in enumerate(hits):
        for tj, mj in hits[i + 1 :]:
            if window and tj - ti > window:
                break
            if mj != mi:
                out += 1
        if out >= stop:
            break
    return out


def _log10_poisson_cdf(k: int, lam: float) -> float:
    """log10 P(X <= k) for X ~ Poisson(lam), for k well below lam (the sweep's side).

    >>> round(_log10_poisson_cdf(0, 10.0), 3), round(_log10_poisson_cdf(2, 10.0), 3)
    (-4.343, -2.558)
    """
    logs = [-lam + i * math.log(lam) - math.lgamma(i + 1) for i in range(k + 1)]
    top = max(logs)
    return (top + math.log(sum(math.exp(x - top) for x in logs))) / math.log(10)
