"""The wheel is the product: built, installed non-editable, run from outside the checkout.

An editable install finds everything in the checkout, so it hid a package missing
from the wheel (``distillguard.api.routes``: the installed ``serve`` died) and configs
that were not shipped at all (the installed worker ran with zero rules). Here the
wheel is installed into a fresh virtualenv and run with the working directory in
``tmp_path``, where nothing of the checkout can be found by accident.

The fresh venv sees the checkout venv's third-party packages through a ``.pth``
path line (installing every dependency from PyPI would take minutes); that line
adds the directory only, so the checkout's editable-install hook (its own ``.pth``)
never runs, and the test checks that ``distillguard`` is imported from the fresh venv.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from distillguard.infra import EmbeddedStack, die_with_parent, free_port, stop_process
from tests.conftest import ROOT


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any DISTILLGUARD_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, timeout_s: float = 300.0, **env: str) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=_clean_env(**env), capture_output=True, text=True, timeout=timeout_s
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _setup_module() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "setup.py"), run_name="setup")


def test_setup_finds_every_python_folder_under_the_mapped_roots() -> None:
    """No hand-kept list: a new subpackage ships without anyone remembering to add it."""
    setup = _setup_module()
    mapping: dict[str, str] = setup["package_dir"]()
    packages = set(setup["packages"](mapping))
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("*.py"):
            rel = init.parent.relative_to(ROOT / folder)
            if "__pycache__" in rel.parts:
                continue
            assert ".".join([name, *rel.parts]) in packages, init
    assert {"distillguard.api.routes", "distillguard.configs"} <= packages


def _build_wheel(out: Path) -> Path:
    """``pip wheel`` of a copy of the sources the mapping names (never in-tree: a
    ``build/`` folder left by an earlier build would ship files since deleted)."""
    src = out / "src"
    mapping: dict[str, str] = _setup_module()["package_dir"]()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in sorted(set(mapping.values())):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)], out)
    (wheel,) = out.glob("distillguard-*.whl")
    return wheel


def _fresh_venv(path: Path) -> Path:
    """A venv with this venv's third-party packages visible but not its distillguard."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], path
    ).strip()
    # a path line: the directory joins sys.path, its own .pth files (the editable
    # finder of the checkout) are not executed
    Path(purelib, "_checkout_site_packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ``bin/`` of a fresh venv with the wheel installed (non-editable)."""
    base = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(base / "dist")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "distillguard/api/routes/__init__.py",
        "distillguard/configs/default.yaml",
        "distillguard/configs/scenarios/small.yaml",
        "distillguard/api/static/console/index.html",
    ):
        assert shipped in names, f"{shipped} missing from {wheel.name}"
    assert not any(n.startswith("distillguard/synthetic") for n in names)
    python = _fresh_venv(base / "venv")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        base,
    )
    yield python.parent


@pytest.mark.slow
def test_installed_package_is_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    out = _run(
        [
            str(installed / "python"),
            "-c",
            "import sys, distillguard, distillguard.settings as s;"
            "print(distillguard.__file__);"
            "print(any('editable' in repr(f).lower() for f in sys.meta_path));"
            "print(len(s.get_settings().detectors.rules))",
        ],
        tmp_path,
    ).split()
    assert Path(out[0]).is_relative_to(installed.parent), out[0]
    assert not Path(out[0]).is_relative_to(ROOT)
    assert out[1] == "False", "the checkout's editable finder leaked into the fresh venv"
    assert int(out[2]) > 0, "installed settings have no detector rules"


@pytest.mark.slow
def test_installed_serve_answers(installed: Path, tmp_path: Path, stack: EmbeddedStack) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(installed / "distillguard"), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=_clean_env(**stack.env()),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60.0
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"installed serve exited {proc.returncode}:\n{log.read_text()}"
                )
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1.0) as resp:
                    assert orjson.loads(resp.read()) == {"status": "ok"}
                    break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, "installed serve never answered /healthz"
                time.sleep(0.2)
        for path in ("/readyz", "/console/"):  # Redis from the stack; static package data
            with urllib.request.urlopen(f"{url}{path}", timeout=5.0) as resp:
                assert resp.status == 200, path
    finally:
        stop_process(proc)


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "events": report["events"],
        "rejected": report["rejected"],
        "alerted": sorted(a for a, o in report["accounts"].items() if o["first_alert_ts"]),
        "clusters": sorted((c["cluster_id"], c["members"]) for c in report["clusters"]),
    }


@pytest.mark.slow
def test_installed_replay_matches_the_checkout(installed: Path, tmp_path: Path) -> None:
    events, labels = tmp_path / "small.jsonl", tmp_path / "labels.jsonl"
    checkout = [sys.executable, "-m", "distillguard"]
    _run(
        [
            *checkout,
            "simulate",
            "--scenario",
            "small",
            "--out",
            str(events),
            "--labels",
            str(labels),
        ],
        ROOT,
    )
    ours = tmp_path / "checkout.json"
    _run([*checkout, "replay", str(events), "--report", str(ours)], ROOT)
    theirs = tmp_path / "installed.json"
    _run(
        [str(installed / "distillguard"), "replay", str(events), "--report", str(theirs)], tmp_path
    )
    expected = _summary(orjson.loads(ours.read_bytes()))
    assert expected["alerted"] and expected["clusters"], "the small scenario alerts nothing?"
    assert _summary(orjson.loads(theirs.read_bytes())) == expected
