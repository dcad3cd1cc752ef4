"""The real prompt corpora the simulator draws text from (``../shared/data``).

Each corpus is a JSON Lines file of ``{"prompt", "response_chars", "source"}``; see
``docs/data.md`` for what each one is and its licence. Loaded once into plain lists
and numpy arrays so traffic generators can index them vectorised.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from distillguard.settings import PROJECT_ROOT

DATA_DIR_ENV = "DISTILLGUARD_DATA_DIR"

#: Short name -> file under the data directory. Distillers draw from the first two,
#: benign accounts from the rest.
CORPUS_FILES: dict[str, str] = {
    "codegen": "machine_generated/gpteacher_codegen.jsonl",
    "toolformer": "machine_generated/gpteacher_toolformer.jsonl",
    "nq": "human_written/nq_open_dev.jsonl",
    "self_instruct": "human_written/self_instruct_seed_tasks.jsonl",
    "gsm8k": "benchmarks/gsm8k_test.jsonl",
}


def default_data_dir() -> Path:
    """``$DISTILLGUARD_DATA_DIR``, else ``<repo>/../shared/data``."""
    if env := os.environ.get(DATA_DIR_ENV):
        return Path(env)
    return PROJECT_ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class Corpus:
    """Prompts of one corpus, with their lengths and reference-answer lengths (NaN: none)."""

    name: str
    prompts: list[str]
    lengths: np.ndarray
    response_chars: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)


def load_corpus(name: str, path: Path) -> Corpus:
    if not path.exists():
        raise FileNotFoundError(
            f"corpus {name!r} not found at {path}; set --data-dir or ${DATA_DIR_ENV}"
        )
    prompts: list[str] = []
    responses: list[float] = []
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
                prompt = rec["prompt"]
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: not a corpus record ({exc})") from None
            if not isinstance(prompt, str) or not prompt:
                continue
            prompts.append(prompt)
            rc = rec.get("response_chars")
            responses.append(float(rc) if isinstance(rc, int | float) else np.nan)
    if not prompts:
        raise ValueError(f"corpus {name!r} at {path} holds no prompts")
    return Corpus(
        name=name,
        prompts=prompts,
        lengths=np.fromiter((len(p) for p in prompts), dtype=np.int64, count=len(prompts)),
        response_chars=np.asarray(responses, dtype=np.float64),
    )


def load_corpora(data_dir: Path | None = None) -> dict[str, Corpus]:
    """Every corpus the simulator uses, by short name."""
    root = data_dir or default_data_dir()
    return {name: load_corpus(name, root / rel) for name, rel in CORPUS_FILES.items()}


#: Corpus splits. ``tuning`` runs (where thresholds may be chosen) and ``heldout`` runs
#: (where figures are reported) never share a prompt; ``all`` is every row, as the
#: scenarios written before the split (``small``, ``default``) use.
SPLITS = ("all", "tuning", "heldout")
#: Share of each corpus's rows reserved for held-out runs: half, so both sides are the same
#: size and effects of corpus size (how often a small corpus repeats) are alike on both.
HELDOUT_SHARE = 0.5


def row_split(prompt: str) -> str:
    """Which split a corpus row belongs to: a stable hash of its text, not its position.

    Hashing the text (blake2b, not the salted ``hash``) keeps the split identical when a
    corpus file is reordered or grows, and puts duplicate rows on the same side.

    >>> row_split("When did the eagles win their last super bowl?") in ("tuning", "heldout")
    True
    >>> row_split("x") == row_split("x")
    True
    """
    digest = hashlib.blake2b(prompt.encode(), digest_size=8).digest()
    return "heldout" if int.from_bytes(digest, "big") % 1000 < HELDOUT_SHARE * 1000 else "tuning"


def split_corpus(corpus: Corpus, split: str) -> Corpus:
    """The rows of ``corpus`` in ``split`` (``all``: the corpus itself)."""
    if split not in SPLITS:
        raise ValueError(f"unknown corpus split {split!r} (known: {', '.join(SPLITS)})")
    if split == "all":
        return corpus
    keep = [i for i, p in enumerate(corpus.prompts) if row_split(p) == split]
    if not keep:
        raise ValueError(f"corpus {corpus.name!r} has no rows in split {split!r}")
    idx = np.asarray(keep, dtype=np.int64)
    return Corpus(
        name=corpus.name,
        prompts=[corpus.prompts[i] for i in keep],
        lengths=corpus.lengths[idx],
        response_chars=corpus.response_chars[idx],
    )


def split_corpora(corpora: dict[str, Corpus], split: str) -> dict[str, Corpus]:
    """Every corpus restricted to ``split``."""
    return {name: split_corpus(c, split) for name, c in corpora.items()}
