"""``distillguard demo`` on Apache Kafka and Redis: the same product, production's parts.

``make demo`` stays on the embedded pair; ``DISTILLGUARD_STACK_BROKER=kafka`` and
``DISTILLGUARD_STACK_REDIS=redis`` (read by ``EmbeddedStack``) put the same demo on a
KRaft broker and Debian's Redis. Checked as ``test_demo`` checks the embedded one:
traffic flows, alerts reach the store, it stops by itself after ``--duration`` and
leaves no process behind; and the broker and store really were Kafka and Redis.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from distillguard.infra import STACK_BROKER_ENV, STACK_REDIS_ENV
from tests.conftest import ROOT, process_alive
from tests.test_demo import _descendants

#: As test_demo runs it: the small scenario, 25 s, a free port.
DEMO_ARGS = ("--scenario", "small", "--rate", "4000", "--duration", "25", "--port", "0")


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def test_demo_on_apache_kafka_and_redis_flows_alerts_and_stops_cleanly() -> None:
    # The demo starts every run on a fresh broker (Tansu keeps nothing) and resets its
    # checkpoint accordingly; Kafka and Redis would keep the last run's log and store in
    # the demo's directory for this kind of stack, so that goes first.
    shutil.rmtree(ROOT / ".distillguard" / "demo" / "stack-kafka-redis", ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
    env.update({"COLUMNS": "120", STACK_BROKER_ENV: "kafka", STACK_REDIS_ENV: "redis"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "distillguard", "demo", *DEMO_ARGS],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: dict[int, str] = {}
    try:
        while proc.poll() is None:
            for pid in _descendants(proc.pid) - seen.keys():
                seen[pid] = _cmdline(pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)
        out = proc.stdout.read() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert "stopped cleanly" in out
    assert re.search(r"analyst key\s+(dg_\S+)", out), out[-3000:]
    processed = [int(n.replace(",", "")) for n in re.findall(r"processed ([\d,]+)", out)]
    assert processed and max(processed) > 1000, out[-3000:]
    alerts = [int(n.replace(",", "")) for n in re.findall(r"alerts ([\d,]+) \(", out)]
    assert alerts and max(alerts) > 0, "no alert reached the store during the demo"
    commands = list(seen.values())
    assert any("java" in c and "kafka.Kafka" in c for c in commands), commands
    assert any("redis-server" in c for c in commands), commands
    assert not any("valkey" in c or "tansu" in c for c in commands), commands
    leftover = [p for p in seen if process_alive(p)]
    assert not leftover, f"processes left behind: {leftover}"
