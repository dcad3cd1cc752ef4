"""Behaviour-vector bands: accounts whose feature vectors point the same way meet.

The account detectors compute a per-account feature dict (volume, reasoning rate,
harvesting parameters...). Accounts run by one operator tend to sit close together
in that space. Random-hyperplane LSH (sign of projections of the standardised
vector) turns closeness into shared band values, which then enter the linkage graph
as weak evidence of kind ``behaviour``, weighted by rarity like any other. This is
far cheaper than clustering the vectors online (river's DBSTREAM re-clusters on
every ``learn_one``), and needs no global re-clustering to split later.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

_PLANES = 16
_BAND_BITS = 8


class BehaviourBands:
    """Standardise feature dicts online and hash them to two 8-bit band keys.

    Parameters
    ----------
    planes
        Random hyperplanes (signature bits); bands of ``_BAND_BITS`` bits each.

    Examples
    --------
    >>> bb = BehaviourBands()
    >>> for i in range(50):
    ...     _ = bb.keys({"rate": float(i % 7), "cot": (i % 3) / 3})
    >>> a = bb.keys({"rate": 6.0, "cot": 0.66})
    >>> b = bb.keys({"rate": 6.1, "cot": 0.67})
    >>> c = bb.keys({"rate": 0.0, "cot": 0.0})
    >>> a == b, a == c, a[0][:3]
    (True, False, 'b:0')
    """

    def __init__(self, planes: int = _PLANES) -> None:
        self.planes = planes
        self._stats: dict[str, list[float]] = {}  # name -> [n, mean, m2]
        self._vectors: dict[str, np.ndarray] = {}

    def _plane(self, name: str) -> np.ndarray:
        vec = self._vectors.get(name)
        if vec is None:
            rng = np.random.RandomState(zlib.crc32(name.encode()))
            vec = self._vectors[name] = rng.standard_normal(self.planes)
        return vec

    def keys(self, features: dict[str, float]) -> list[str]:
        """Learn the features' scale and return the vector's band keys."""
        proj = np.zeros(self.planes)
        for name, value in features.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            st = self._stats.get(name)
            if st is None:
                st = self._stats[name] = [0.0, 0.0, 0.0]
            st[0] += 1
            delta = value - st[1]
            st[1] += delta / st[0]
            st[2] += delta * (value - st[1])
            sd = math.sqrt(st[2] / st[0]) if st[0] > 1 else 0.0
            if sd > 0:
                proj += ((value - st[1]) / sd) * self._plane(name)
        bits = (proj > 0).astype(np.uint8)
        out = []
        for band in range(self.planes // _BAND_BITS):
            chunk = bits[band * _BAND_BITS : (band + 1) * _BAND_BITS]
            out.append(f"b:{band}{int(np.packbits(chunk)[0]):02x}")
        return out

    def state(self) -> dict[str, tuple[float, float, float]]:
        """Per feature (count, mean, M2): all the bands learn (the planes are seeded)."""
        return {k: (v[0], v[1], v[2]) for k, v in self._stats.items()}

    def load(self, stats: dict[str, tuple[float, float, float]]) -> None:
        self._stats = {k: [float(x) for x in v] for k, v in stats.items()}
