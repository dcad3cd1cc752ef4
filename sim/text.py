"""Text helpers the simulator needs: token estimates and the prompt fingerprint.

``simhash64`` is what an upstream log pipeline computes when it redacts a prompt
(CONTRACT §1 ``prompt_fingerprint``): near-duplicate prompts, such as one campaign
template with different slot contents, land a few bits apart, so templating stays
visible without the text. It is pure and deterministic (blake2b, not ``hash``), so
detectors can compute the same fingerprint from a ``prompt`` they do see.
"""

from __future__ import annotations

import hashlib
import re
from itertools import pairwise

import numpy as np

_WORD = re.compile(r"\w+")
CHARS_PER_TOKEN = 4.0


def shingles(text: str) -> list[str]:
    """Word unigrams and bigrams: bigrams keep word order, unigrams keep short texts stable."""
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in pairwise(words)]


def simhash64(text: str) -> str:
    """64-bit SimHash of ``text`` as 16 lowercase hex characters.

    Examples
    --------
    >>> a = simhash64("Think step by step. Task: write a function that sorts a list")
    >>> b = simhash64("Think step by step. Task: write a function that sorts a dict")
    >>> c = simhash64("When did the eagles win their last super bowl?")
    >>> len(a), hamming(a, b) < hamming(a, c)
    (16, True)
    >>> simhash64("")
    '0000000000000000'
    """
    features = shingles(text)
    if not features:
        return "0" * 16
    digests = b"".join(hashlib.blake2b(f.encode(), digest_size=8).digest() for f in features)
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8)).reshape(len(features), 64)
    votes = bits.sum(axis=0, dtype=np.int64) * 2 - len(features)
    return np.packbits(votes > 0).tobytes().hex()


def hamming(a: str, b: str) -> int:
    """Bits that differ between two fingerprints.

    >>> hamming("00000000000000ff", "000000000000000f")
    4
    """
    return (int(a, 16) ^ int(b, 16)).bit_count()


def tokens_for_chars(chars: np.ndarray) -> np.ndarray:
    """Token counts consistent with text length (~4 characters a token, at least 1).

    >>> tokens_for_chars(np.array([0, 3, 400])).tolist()
    [1, 1, 100]
    """
    return np.maximum(1, np.ceil(np.asarray(chars, dtype=np.float64) / CHARS_PER_TOKEN)).astype(
        np.int64
    )
