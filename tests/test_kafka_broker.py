"""Apache Kafka and Redis started by the project itself: up, data kept, nothing left behind.

The session's ``[apache]`` stack proves they serve the suite; these tests check the
launchers' own promises: ``distillguard infra up --broker kafka --redis redis`` starts
real Apache Kafka (KRaft) and real Redis, a restart on the same directory keeps
topics, records and keys, ``down`` stops everything, and a killed parent takes its
JVM with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from distillguard.infra import stop_process
from tests.conftest import ROOT, process_alive

#: ``distillguard ARGS`` with the infra state file moved into the test's directory, so a
#: developer's own ``infra up`` is left alone.
CLI = (
    "import sys\n"
    "from pathlib import Path\n"
    "import distillguard.infra_cli as infra_cli\n"
    "infra_cli.STATE_FILE = Path(sys.argv[1])\n"
    "from distillguard.cli import app\n"
    "app(sys.argv[2:])\n"
)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}


def _run(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, str(state), "infra", *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def _infra(state: Path, *args: str) -> dict[str, str]:
    """Run ``distillguard infra ARGS``; the ``export`` lines it printed, as a dict."""
    out = _run(state, *args)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    exports = [line.removeprefix("export ") for line in out.stdout.splitlines()]
    return dict(line.split("=", 1) for line in exports if line.startswith("DISTILLGUARD_"))


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_infra_up_kafka_keeps_data_across_a_restart_and_down_stops_everything(
    tmp_path: Path,
) -> None:
    state = tmp_path / "infra.json"
    pids: list[int] = []
    try:
        env = _infra(state, "up", "--broker", "kafka", "--redis", "redis")
        pids = json.loads(state.read_text())["pids"]
        commands = [_cmdline(p) for p in pids]
        assert any("kafka.Kafka" in c and "java" in c for c in commands), commands
        assert any("redis-server" in c for c in commands), commands
        bootstrap, url = env["DISTILLGUARD_KAFKA_BOOTSTRAP"], env["DISTILLGUARD_REDIS_URL"]
        info = redis.Redis.from_url(url).info("server")
        assert "redis_version" in info and "valkey_version" not in info  # real Redis
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        assert {"api-requests", "api-requests.dlq", "abuse-alerts"} <= set(admin.list_topics())
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        for i in range(10):
            producer.send("abuse-alerts", key=b"k", value=f"alert {i}".encode())
        producer.flush(30)
        producer.close()
        redis.Redis.from_url(url).set("kept", "yes")

        assert "stopped" in _run(state, "down").stdout
        assert not any(process_alive(p) for p in pids), "infra down left processes behind"

        # Same directory, new ports: the formatted KRaft log and the AOF are reused.
        env = _infra(state, "up", "--broker", "kafka", "--redis", "redis")
        pids = json.loads(state.read_text())["pids"]
        assert redis.Redis.from_url(env["DISTILLGUARD_REDIS_URL"]).get("kept") == b"yes"
        consumer = KafkaConsumer(
            bootstrap_servers=env["DISTILLGUARD_KAFKA_BOOTSTRAP"], consumer_timeout_ms=5000
        )
        tp = TopicPartition("abuse-alerts", 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        assert [m.value for m in consumer] == [f"alert {i}".encode() for i in range(10)]
        consumer.close()
    finally:
        if state.exists():
            _run(state, "down")
        for pid in pids:  # detached: nothing else would ever stop them
            stop_process(pid)
    assert not any(process_alive(p) for p in pids)


def test_kafka_and_redis_die_when_the_parent_is_killed() -> None:
    code = (
        "from distillguard.infra import EmbeddedStack\n"
        "s = EmbeddedStack(broker='kafka', redis_kind='redis').start()\n"
        "print(' '.join(str(p.pid) for p in s.procs), flush=True)\n"
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=_env()
    )
    assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 30  # the JVM runs Kafka's shutdown hook first
    while any(process_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(process_alive(p) for p in pids)
