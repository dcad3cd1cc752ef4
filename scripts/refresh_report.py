"""Regenerate the `default` evaluation shown in the README (``make report``).

Simulates the default scenario, evaluates the shipped pipeline, copies ``report.md``,
``metrics.json`` and the plots to ``docs/eval/``, and splices the report's main table
into README.md between the ``report`` markers. The README's figures therefore come
from the command, never from an edit by hand.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".distillguard" / "report"
DOCS = ROOT / "docs" / "eval"
START, END = "<!-- report:start -->", "<!-- report:end -->"


def run(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "distillguard", *args], cwd=ROOT, check=True)


def main() -> None:
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
    # Headings move down two levels to sit under the README's own; nothing else changes.
    report = "\n".join(
        f"##{line}" if line.startswith("#") else line
        for line in (out / "report.md").read_text().splitlines()
    )
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{report.strip()}\n{END}{tail}")
    print(f"README and {DOCS.relative_to(ROOT)}/ updated from {out}")


if __name__ == "__main__":
    main()
