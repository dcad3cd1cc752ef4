"""Regenerate the evaluations shown in the README (``make report``, ``make robustness``).

``make report``: simulates the default scenario, evaluates the shipped pipeline, copies
``report.md``, ``metrics.json`` and the plots to ``docs/eval/``, and splices the report's
main table into README.md between the ``report`` markers.

``make robustness`` (``--robustness``): runs ``distillguard evaluate-heldout`` (every
held-out run of configs/protocol.yaml), copies its ``report.md`` and ``metrics.json`` to
``docs/eval/robustness/``, and splices the pooled robustness matrix, the honest-group
table and the folds into README.md between the ``robustness`` markers.

Either way the README's figures come from the command, never from an edit by hand.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".distillguard" / "report"
DOCS = ROOT / "docs" / "eval"
README = ROOT / "README.md"
#: The held-out report's per-run sections stay in docs/eval/robustness/report.md.
PER_RUN = "## Per run"


def run(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "distillguard", *args], cwd=ROOT, check=True)


def demote(report: str) -> str:
    """Headings down two levels, to sit under the README's own; nothing else changes.

    >>> demote("# T\\n\\ntext\\n## S")
    '### T\\n\\ntext\\n#### S'
    """
    return "\n".join(f"##{line}" if line.startswith("#") else line for line in report.splitlines())


def splice(text: str, name: str, body: str) -> str:
    """``text`` with what lies between ``<!-- name:start -->`` and ``<!-- name:end -->``
    replaced by ``body``.

    >>> splice("a <!-- x:start -->old<!-- x:end --> b", "x", "new")
    'a <!-- x:start -->\\nnew\\n<!-- x:end --> b'
    >>> splice("no markers", "x", "new")
    Traceback (most recent call last):
    ...
    ValueError: README.md has no <!-- x:start --> ... <!-- x:end --> markers
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text.split(start, 1)[1]:
        raise ValueError(f"README.md has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body.strip()}\n{end}{tail}"


def refresh_default() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    events, labels = WORK / "default.jsonl", WORK / "default_labels.jsonl"
    if not events.exists():
        run("simulate", "--scenario", "default", "--out", str(events), "--labels", str(labels))
    out = WORK / "eval"
    run("evaluate", "--events", str(events), "--labels", str(labels), "--out", str(out))
    DOCS.mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "metrics.json", "pr_curves.png", "delay_cdf.png"):
        if (out / name).exists():
            shutil.copy(out / name, DOCS / name)
    README.write_text(splice(README.read_text(), "report", demote((out / "report.md").read_text())))
    print(f"README and {DOCS.relative_to(ROOT)}/ updated from {out}")


def refresh_robustness() -> None:
    out = ROOT / ".distillguard" / "robustness"
    # --reuse: held-out runs are a pure function of (scenario, seed, corpora); only the
    # detectors change between refreshes, so the simulated files are kept.
    run("evaluate-heldout", "--out", str(out / "eval"), "--work", str(out / "runs"), "--reuse")
    docs = DOCS / "robustness"
    docs.mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "metrics.json"):
        shutil.copy(out / "eval" / name, docs / name)
    summary = (out / "eval" / "report.md").read_text().split(PER_RUN, 1)[0]
    link = f"{docs.relative_to(ROOT)}/report.md"
    summary += f"\nEach held-out run on its own, and every figure: [{link}]({link}).\n"
    README.write_text(splice(README.read_text(), "robustness", demote(summary)))
    print(f"README and {docs.relative_to(ROOT)}/ updated from {out / 'eval'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--robustness", action="store_true", help="the held-out robustness matrix instead"
    )
    if parser.parse_args().robustness:
        refresh_robustness()
    else:
        refresh_default()


if __name__ == "__main__":
    main()
