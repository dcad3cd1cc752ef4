"""Evidence values an event shows, as short string keys: pure functions, no state.

A key is a one-character kind prefix (see ``config.KIND_OF_PREFIX``), a colon, and
the value: ``p:<payment fingerprint>``, ``n:203.0.113`` (the /24, or the /64 for
IPv6), ``a:16509``, ``u:<user agent>``, ``s:<crc of the system prompt>``,
``t:<template band>``, ``y:<onset bucket>``, ``b:<behaviour band>``. Strings keep the
hot path to one dict lookup per value and snapshot to JSON as they are.

Template keys are locality-sensitive: a prompt's *skeleton* (its first and last few
tokens, lower-cased, with numbers, quoted strings, code and long words masked) is
MinHashed, separately for the head and the tail, and each band of the signature is a
key. Two prompts of one template with different slot contents share the head or the
tail skeleton, hence all of its bands; near-identical templates (a word changed)
still share most bands. MinHash is computed here with numpy over crc32 shingle
hashes: datasketch's ``MinHash.update_batch`` measured ~230 µs per prompt on this
machine against ~20 µs for the vectorised form below, and the hot path samples
prompts per account anyway. crc32 rather than ``hash`` keeps keys stable across
processes, so snapshots and a split deployment agree on them.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import zlib
from functools import lru_cache

import numpy as np

_TOKEN = re.compile(
    r"\d[\d.,:/-]*"  # numbers, dates, times
    r"|\w+"
    r"|\"[^\"\n]{0,400}\"|“[^”\n]{0,400}”"  # quoted strings
    r"|[^\w\s]"
)
_LONG_WORD = 18
_PERMS = 16  # per end (head, tail)
_ROWS = 4  # band = 4 rows, so 4 bands per end; identical ends share all 4
_PRIME = np.uint64(4_294_967_311)
_rng = np.random.RandomState(20_261_124)
_A = _rng.randint(1, 1 << 31, size=_PERMS).astype(np.uint64)
_B = _rng.randint(0, 1 << 31, size=_PERMS).astype(np.uint64)
_EDGE_CHARS = 12  # characters read per token of the edge, so long prompts are not tokenised


def net_key(ip: str) -> str:
    """The /24 of an IPv4 address or the /64 of an IPv6 one, as an evidence key.

    >>> net_key("203.0.113.77"), net_key("2001:db8:1:2:3:4:5:6")
    ('n:203.0.113', 'n:2001:db8:1:2::/64')
    """
    if ":" not in ip:
        return "n:" + ip.rpartition(".")[0]
    return _ipv6_key(ip)


@lru_cache(maxsize=65_536)
def _ipv6_key(ip: str) -> str:
    try:
        return "n:" + str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    except ValueError:  # decoded events are validated; this keeps odd input harmless
        return "n:" + ip


def text_key(prefix: str, text: str) -> str:
    """A compact key for a long exact value (a system prompt).

    >>> text_key("s", "You are a helpful assistant.")
    's:a3989997'
    """
    return f"{prefix}:{zlib.crc32(text.encode('utf-8', 'replace')):08x}"


def skeleton(text: str, edge: int) -> tuple[list[str], list[str]]:
    """The masked first and last ``edge`` tokens of a prompt: where a template lives.

    >>> head, tail = skeleton('Solve step by step: Tom has 3 apples. Answer "yes" or no.', 4)
    >>> head, tail
    (['solve', 'step', 'by', 'step'], ['<q>', 'or', 'no', '.'])
    """
    span = edge * _EDGE_CHARS
    head = _mask(_TOKEN.findall(text[:span].lower()))[:edge]
    tail = _mask(_TOKEN.findall(text[-span:].lower()))[-edge:] if len(text) > span else []
    if not tail:
        tail = _mask(_TOKEN.findall(text.lower()))[-edge:]
    return head, tail


def _mask(tokens: list[str]) -> list[str]:
    out = []
    for tok in tokens:
        first = tok[0]
        if first.isdigit():
            out.append("<n>")
        elif first in '"“':
            out.append("<q>")
        elif len(tok) > _LONG_WORD:
            out.append("<w>")
        else:
            out.append(tok)
    return out


def template_keys(text: str, edge: int = 8) -> list[str]:
    """Band keys of a prompt's head and tail skeletons (8 keys; none for empty text).

    Slot-filled variants of one template meet on the end the template occupies:

    >>> a = template_keys("Explain your reasoning step by step, then answer. Q: 12 + 30?")
    >>> b = template_keys("Explain your reasoning step by step, then answer. Q: Who was Kant?")
    >>> c = template_keys("When did the eagles win their last super bowl?")
    >>> len(a), len(set(a) & set(b)) >= 4, len(set(a) & set(c))
    (8, True, 0)
    """
    head, tail = skeleton(text, edge)
    if not head:
        return []
    shingles = _shingles(head)
    n_head = len(shingles)
    shingles.extend(_shingles(tail))
    hashes = np.fromiter(
        (zlib.crc32(s.encode()) for s in shingles), dtype=np.uint64, count=len(shingles)
    )
    perm = (hashes[:, None] * _A[None, :] + _B[None, :]) % _PRIME
    sig = np.minimum.reduceat(perm, [0, n_head], axis=0).astype(np.uint32)
    raw = sig.tobytes()
    step = 4 * _ROWS
    return [
        f"t:{i}{zlib.crc32(raw[i * step : (i + 1) * step]):08x}" for i in range(len(raw) // step)
    ]


def _shingles(tokens: list[str]) -> list[str]:
    if len(tokens) < 2:
        return list(tokens)
    return [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


def fingerprint_keys(fingerprint: str) -> list[str]:
    """Band keys of an upstream 64-bit SimHash (``prompt_fingerprint``): 4 bands of 16 bits.

    Fingerprints within 3 bits of each other share at least one band.

    >>> fingerprint_keys("00ff00ff00ff00fe")
    ['t:f000ff', 't:f100ff', 't:f200ff', 't:f300fe']
    """
    fp = fingerprint.lower()
    return [f"t:f{i}{fp[4 * i : 4 * i + 4]}" for i in range(4)]


def add_fingerprint(bits: list[int], fingerprint: str) -> None:
    """Count a 64-bit SimHash into ``bits`` = [fingerprints, ones at bit 0, ..., bit 63].

    >>> bits = [0] * 65
    >>> add_fingerprint(bits, "8000000000000003")
    >>> bits[0], bits[1], bits[2], bits[3], bits[64]
    (1, 1, 1, 0, 1)
    """
    x = int(fingerprint, 16)
    bits[0] += 1
    for base in range(1, 65, 8):
        for pos in _SET_BITS[x & 0xFF]:
            bits[base + pos] += 1
        x >>= 8


_SET_BITS: tuple[tuple[int, ...], ...] = tuple(
    tuple(i for i in range(8) if byte >> i & 1) for byte in range(256)
)


def centroid_keys(bits: list[int]) -> tuple[int, list[str]]:
    """The majority bits of an account's fingerprints, and their 8 bands of 8 bits.

    One fingerprint of a templated prompt differs from another in ~20 of 64 bits,
    since the slot contents differ; but the bits the template decides are the same in
    all of them, so the per-account majority converges to the template's signature and
    accounts sending one template (in any mix with other prompts) end up with close
    centroids, while an account of varied human prompts gets a random one. The bands
    only find candidate pairs; a link weighs how many of the 64 bits agree.

    >>> bits = [0] * 65
    >>> for fp in ("00000000000000ff", "00000000000000fe", "00000000000001ff"):
    ...     add_fingerprint(bits, fp)
    >>> value, keys = centroid_keys(bits)
    >>> hex(value), keys[:2]
    ('0xff', ['c:0ff', 'c:100'])
    """
    n = bits[0]
    value = 0
    for i in range(64):
        if 2 * bits[i + 1] > n:
            value |= 1 << i
    return value, [f"c:{band}{(value >> (8 * band)) & 0xFF:02x}" for band in range(8)]


def onset_key(ts: float, bucket_s: float) -> str:
    """The synchronisation bucket of a burst that starts at ``ts``.

    >>> onset_key(1_000.0, 300.0)
    'y:3'
    """
    return f"y:{int(ts // bucket_s)}"
