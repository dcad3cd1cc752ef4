"""Parameters of the linkage stage: the ``detectors.linkage`` section of the settings.

The models live in :mod:`distillguard.settings` with every other section, so the one
settings loader (shipped ``default.yaml``, ``--config`` file, ``DISTILLGUARD_*``
environment) fills them and no detector reads a file; they are re-exported here for
the stage's modules. What stays here is what only the hot path needs: the one-character
key prefix of each evidence kind.
"""

from __future__ import annotations

from distillguard.settings import (
    DEFAULT_GROUP_CAPS,
    DEFAULT_KINDS,
    LinkageConfig,
    LinkageKind,
)

__all__ = [
    "DEFAULT_GROUP_CAPS",
    "DEFAULT_KINDS",
    "KIND_OF_PREFIX",
    "LinkageConfig",
    "LinkageKind",
]

#: Key prefix (one character, used on the hot path) -> kind name (used in reports).
#: Every kind in ``DEFAULT_KINDS`` has exactly one prefix (tested).
KIND_OF_PREFIX: dict[str, str] = {
    "p": "payment",
    "n": "net",
    "a": "asn",
    "u": "user_agent",
    "s": "system_prompt",
    "t": "template",
    "c": "template_centroid",
    "y": "sync",
    "b": "behaviour",
    "k": "cohort",
    "z": "synchrony",
    "f": "fleet",
    "q": "phase",
    "g": "cadence",
}
