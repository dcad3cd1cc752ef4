"""``distillguard demo`` brings the product up, shows traffic flowing, and stops cleanly."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys

from tests.conftest import ROOT, process_alive


def _descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    found, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.add(c)
            todo.append(c)
    return found


def test_demo_runs_shows_flowing_counts_and_alerts_and_stops_cleanly() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
    env["COLUMNS"] = "120"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distillguard",
            "demo",
            "--scenario",
            "small",
            "--rate",
            "4000",
            "--duration",
            "25",
            "--port",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen_children: set[int] = set()
    try:
        while proc.poll() is None:
            seen_children |= _descendants(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)
        out = proc.stdout.read() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert "stopped cleanly" in out
    key = re.search(r"analyst key\s+(dg_\S+)", out)
    assert key, out[-3000:]
    processed = [int(n.replace(",", "")) for n in re.findall(r"processed ([\d,]+)", out)]
    assert processed and max(processed) > 1000, out[-3000:]
    alerts = [int(n.replace(",", "")) for n in re.findall(r"alerts ([\d,]+) \(", out)]
    assert alerts and max(alerts) > 0, "no alert reached the store during the demo"
    assert len(seen_children) >= 5  # broker, Valkey, worker, API, simulator
    leftover = [p for p in seen_children if process_alive(p)]
    assert not leftover, f"processes left behind: {leftover}"
