"""``make lint`` / ``make test``: mypy over the package, the tests and the benchmarks.

mypy cannot follow the package-dir mapping in ``pyproject.toml`` (``stream/`` is
``distillguard.stream``; setuptools' editable install resolves it with an import hook
mypy does not run). So the mapping is laid out as symlinks in ``build/typecheck/``,
mypy checks that tree, and every path it reports is turned back into the file in the
checkout, so editors and people jump to the right place. Settings are in
``[tool.mypy]`` in ``pyproject.toml``; arguments are passed on to mypy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FARM = ROOT / "build" / "typecheck"
PACKAGE = "distillguard"


def package_dir() -> dict[str, str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        mapping: dict[str, str] = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return mapping


def lay_out(farm: Path) -> dict[str, str]:
    """Symlink the mapping under ``farm``; return farm path prefix -> checkout path prefix."""
    if farm.exists():
        for link in sorted(farm.rglob("*"), key=lambda p: -len(p.parts)):
            if link.is_symlink() or link.is_file():
                link.unlink()
            else:
                link.rmdir()
    top = farm / PACKAGE
    top.mkdir(parents=True)
    back: dict[str, str] = {}
    mapping = package_dir()
    for entry in sorted((ROOT / mapping[PACKAGE]).iterdir()):
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry)
            back[str((top / entry.name).relative_to(ROOT))] = str(entry.relative_to(ROOT))
    for name, folder in mapping.items():
        if name == PACKAGE:
            continue
        sub = name.removeprefix(PACKAGE + ".")
        if "." in sub:
            raise SystemExit(f"typecheck: nested mapping {name} is not supported")
        (top / sub).symlink_to(ROOT / folder, target_is_directory=True)
        back[str((top / sub).relative_to(ROOT))] = folder
    return back


def unmap(line: str, back: dict[str, str]) -> str:
    for prefix in sorted(back, key=len, reverse=True):
        if line.startswith(prefix):
            return back[prefix] + line[len(prefix) :]
    return line


def run(targets: list[str], back: dict[str, str], extra: list[str]) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", *extra, *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPY_FORCE_COLOR": "0"},
    )
    for line in (done.stdout + done.stderr).splitlines():
        print(unmap(line, back))
    return done.returncode


def main() -> int:
    back = lay_out(FARM)
    package = str((FARM / PACKAGE).relative_to(ROOT))
    # Two runs: bench/ and scripts/ are folders of scripts whose module names (``detectors``,
    # ``linkage``) would clash with the checkout's top-level folders in one run.
    code = run([package, "tests"], back, sys.argv[1:])
    # the package was checked above: report only the scripts' own errors
    scripts = run(["--follow-imports=silent", "bench", "scripts"], back, sys.argv[1:])
    return code or scripts


if __name__ == "__main__":
    sys.exit(main())
