"""Package discovery for the mapped layout; everything else is in pyproject.toml.

``pyproject.toml`` maps folders beside ``distillguard/`` into it (``stream/`` is
``distillguard.stream``). setuptools cannot discover packages under such a mapping, and
a hand-kept list once forgot ``distillguard.api.routes`` (the installed ``serve`` died),
so every package below each mapped folder is found here instead.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_namespace_packages, setup

ROOT = Path(__file__).resolve().parent


def package_dir() -> dict[str, str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        mapping: dict[str, str] = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return mapping


def packages(mapping: dict[str, str]) -> list[str]:
    """Each mapped package and every folder below it.

    Namespace discovery (every folder, not only those with ``__init__.py``): a new
    subpackage without one is shipped rather than silently dropped, and data folders
    (``api/static/console``, ``configs/scenarios``) are packages as setuptools expects.
    """
    found: list[str] = []
    for name, folder in mapping.items():
        found.append(name)
        subs = find_namespace_packages(str(ROOT / folder), exclude=["__pycache__", "*.__pycache__"])
        found += [f"{name}.{sub}" for sub in subs]
    return sorted(found)


if __name__ == "__main__":
    mapping = package_dir()
    setup(package_dir=mapping, packages=packages(mapping))
