"""Simulated infrastructure: autonomous systems, addresses, user agents, timezones.

Addresses are synthetic but well-formed: each AS owns one deterministic /16, so a
shared /24 or AS in the output means the simulator meant it to be shared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AS:
    asn: int
    country: str
    kind: str  # residential | mobile | cloud | hosting | university | corporate


AS_TABLE: tuple[AS, ...] = (
    AS(7922, "US", "residential"),
    AS(701, "US", "residential"),
    AS(20115, "US", "residential"),
    AS(21928, "US", "mobile"),
    AS(3320, "DE", "residential"),
    AS(3215, "FR", "residential"),
    AS(2856, "GB", "residential"),
    AS(1136, "NL", "residential"),
    AS(4766, "KR", "residential"),
    AS(2516, "JP", "residential"),
    AS(9829, "IN", "residential"),
    AS(7545, "AU", "residential"),
    AS(16509, "US", "cloud"),
    AS(15169, "US", "cloud"),
    AS(8075, "US", "cloud"),
    AS(14618, "US", "cloud"),
    AS(16276, "FR", "hosting"),
    AS(24940, "DE", "hosting"),
    AS(14061, "US", "hosting"),
    AS(63949, "US", "hosting"),
    AS(20473, "US", "hosting"),
    AS(9009, "GB", "hosting"),
    AS(786, "GB", "university"),
    AS(11537, "US", "university"),
    AS(680, "DE", "university"),
    AS(3356, "US", "corporate"),
    AS(6939, "US", "corporate"),
)

#: Country -> UTC offset in hours (local daytime is what drives human rhythms).
TZ_BY_COUNTRY: dict[str, float] = {
    "US": -6.0,
    "DE": 1.0,
    "FR": 1.0,
    "GB": 0.0,
    "NL": 1.0,
    "KR": 9.0,
    "JP": 9.0,
    "IN": 5.5,
    "AU": 10.0,
}

# Public first octets, away from private, loopback, multicast and reserved space.
_FIRST_OCTETS = (
    23,
    31,
    37,
    45,
    51,
    62,
    77,
    81,
    85,
    91,
    94,
    103,
    109,
    141,
    145,
    151,
    176,
    178,
    185,
    188,
    193,
    195,
    203,
    212,
    217,
)

SDK_USER_AGENTS: tuple[str, ...] = (
    "anthropic-python/0.39.0",
    "anthropic-python/0.40.1",
    "anthropic-typescript/0.32.1",
    "openai-python/1.54.3",
    "openai-node/4.71.0",
    "langchain-anthropic/0.3.0",
    "litellm/1.52.0",
    "Vercel-AI-SDK/3.4.9",
)
BROWSER_USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
)
SCRIPT_USER_AGENTS: tuple[str, ...] = (
    "python-requests/2.31.0",
    "python-httpx/0.27.0",
    "aiohttp/3.9.5",
    "Go-http-client/1.1",
    "curl/8.4.0",
    "node-fetch/1.0",
)
IDE_USER_AGENTS: tuple[str, ...] = (
    "vscode-assistant/1.94.0",
    "jetbrains-ai/2024.3",
    "cursor-agent/0.42.3",
)


def as_by_kind(kind: str) -> list[AS]:
    return [a for a in AS_TABLE if a.kind == kind]


def _prefix(asn: int) -> tuple[int, int]:
    return _FIRST_OCTETS[asn % len(_FIRST_OCTETS)], (asn * 7919) % 256


def address(asn: int, host: int) -> str:
    """The ``host``-th address of the AS's /16 (hosts 1..254 per /24).

    >>> address(16509, 0), address(16509, 254)
    ('91.179.0.1', '91.179.1.1')
    """
    a, b = _prefix(asn)
    c, d = divmod(host % 65024, 254)
    return f"{a}.{b}.{c}.{d + 1}"


class AddressBook:
    """Interns addresses with their AS and country, so events carry small integers."""

    def __init__(self) -> None:
        self.ips: list[str] = []
        self.asns: list[int] = []
        self.countries: list[str] = []
        self._index: dict[str, int] = {}

    def add(self, asys: AS, host: int) -> int:
        ip = address(asys.asn, host)
        idx = self._index.get(ip)
        if idx is None:
            idx = self._index[ip] = len(self.ips)
            self.ips.append(ip)
            self.asns.append(asys.asn)
            self.countries.append(asys.country)
        return idx

    def random(self, rng: np.random.Generator, asys: AS) -> int:
        """A random address of ``asys`` (a home line, a VM, a proxy exit)."""
        return self.add(asys, int(rng.integers(0, 65024)))

    def pool(self, rng: np.random.Generator, systems: list[AS], size: int) -> np.ndarray:
        """``size`` addresses spread over ``systems``, a few /24s in each, like a proxy pool."""
        blocks = [int(rng.integers(0, 250)) for _ in systems]
        out = [
            self.add(
                systems[i % len(systems)],
                blocks[i % len(systems)] * 254 + int(rng.integers(0, 3 * 254)),
            )
            for i in range(size)
        ]
        return np.asarray(out, dtype=np.int32)
