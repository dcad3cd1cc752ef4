"""docker-compose.yml: valid, keeping its data, and its services' commands work.

There is no container engine here, so the file is checked three ways:

- ``docker-compose config`` (Debian's docker-compose 1.29, ``make docker-compose``)
  parses and validates it as Compose itself does, without a daemon;
- its structure: data on volumes (``KAFKA_LOG_DIRS`` inside the Kafka volume, Redis's
  append-only file on its own), worker replicas as two services from one anchor (no
  ``deploy.replicas``, which docker-compose 1.x ignores), the image's Kafka version the
  one the suite runs natively, every dependency and volume declared;
- each service's command with its environment runs natively, hosts replaced by the
  addresses of a native Apache Kafka (configured from the ``kafka`` service's
  ``KAFKA_*`` variables) and Redis (the ``redis`` service's command): topics, two
  workers, the API, ``keys create`` and ``produce``, as the file's header runs them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import pytest
import redis
import yaml
from kafka import KafkaAdminClient

from distillguard.detectors.state import decode_shared
from distillguard.infra import free_port, stop_process, wait_ping, wait_port
from distillguard.kafka_broker import KAFKA_VERSION, KafkaCluster
from distillguard.redis_server import redis_server_binary
from distillguard.store import schema
from distillguard.stream.checkpoint import Checkpointer
from tests.conftest import ROOT, wait_for
from tests.helpers.synthetic import stream

COMPOSE = ROOT / "docker-compose.yml"
BUILT = ("topics", "worker-1", "worker-2", "cluster-worker", "api", "produce")
#: Set by KafkaCluster from the machine's ports and directories, not by the file.
KAFKA_ADDRESSING = {
    "node.id",
    "listeners",
    "advertised.listeners",
    "controller.quorum.voters",
    "log.dirs",
}


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())  # resolves anchors and `<<` merges
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    return cast("dict[str, dict[str, Any]]", _compose()["services"])


def _kafka_properties(env: dict[str, str]) -> dict[str, str]:
    """The apache/kafka image's mapping: ``KAFKA_FOO_BAR`` is ``foo.bar``."""
    return {
        k.removeprefix("KAFKA_").lower().replace("_", "."): str(v)
        for k, v in env.items()
        if k.startswith("KAFKA_")
    }


def test_docker_compose_itself_accepts_the_file() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is missing: run `make docker-compose` (Debian's package)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    out = subprocess.run(
        [exe, "--file", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    listed = subprocess.run(
        [exe, "--file", str(COMPOSE), "--profile", "tools", "config", "--services"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert set(listed.stdout.split()) == {"kafka", "redis", *BUILT}, listed.stderr


def test_compose_keeps_data_on_volumes_and_runs_two_workers_without_deploy() -> None:
    compose = _compose()
    services = _services()
    volumes = set(compose.get("volumes") or {})
    assert not [name for name, s in services.items() if "deploy" in s]

    kafka = services["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"  # what the suite runs natively
    mounts = dict(v.split(":")[:2][::-1] for v in kafka["volumes"])  # container path -> volume
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"].split(",")
    for d in log_dirs:
        owner = [m for m in mounts if d == m or d.startswith(m.rstrip("/") + "/")]
        assert owner, f"KAFKA_LOG_DIRS {d} is not on a volume"
        assert mounts[owner[0]] in volumes, f"{mounts[owner[0]]} is not a named volume"
    assert kafka["environment"]["CLUSTER_ID"]

    redis_service = services["redis"]
    command = redis_service["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(
        v.split(":")[1] == "/data" and v.split(":")[0] in volumes for v in redis_service["volumes"]
    )

    workers = [s for name, s in services.items() if name.startswith("worker-")]
    assert len(workers) == 2
    same = ("build", "command", "restart", "stop_grace_period", "depends_on")
    assert all({k: w.get(k) for k in same} == {k: workers[0].get(k) for k in same} for w in workers)
    assert workers[0]["command"] == ["worker", "--stage", "account"]
    cluster = [s for s in services.values() if "cluster" in (s.get("command") or [])]
    assert [s["command"] for s in cluster] == [["worker", "--stage", "cluster"]]  # one owner
    assert "DISTILLGUARD_WORKER__INSTANCE" not in cluster[0]["environment"]
    client_ids = {w["environment"]["DISTILLGUARD_WORKER__CLIENT_ID"] for w in workers}
    assert len(client_ids) == 2
    groups = {w["environment"].get("DISTILLGUARD_WORKER__GROUP_ID") for w in workers}
    assert len(groups) == 1  # one consumer group: they split the partitions

    advertised = kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split("//", 1)[1]
    for name in BUILT:
        env = services[name]["environment"]
        assert env["DISTILLGUARD_KAFKA_BOOTSTRAP"] == advertised, name
        assert env["DISTILLGUARD_REDIS_URL"].startswith("redis://redis:6379/"), name
    for name, s in services.items():
        depends = s.get("depends_on") or {}
        for dep, cond in depends.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
        for v in s.get("volumes") or []:
            source = v.split(":")[0]
            assert source.startswith(".") or source in volumes, f"{name}: undeclared {source}"
    api = services["api"]
    port = api["command"][api["command"].index("--port") + 1]
    assert f"{port}:{port}" in api["ports"]


def test_the_image_ships_every_package_folder() -> None:
    """``build: .`` uses the Dockerfile: it must copy what pyproject.toml maps."""
    import tomllib

    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            copied.update(line.split()[1:-1])
    with (ROOT / "pyproject.toml").open("rb") as f:
        mapping = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    missing = {folder for folder in mapping.values() if folder not in copied}
    missing |= {
        f for f in ("pyproject.toml", "setup.py") if (ROOT / f).exists() and f not in copied
    }
    assert not missing, f"Dockerfile does not COPY {sorted(missing)}"
    assert re.search(r'^ENTRYPOINT \["distillguard"\]', dockerfile, re.M)


@pytest.fixture
def native(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(bootstrap, redis URL): the ``kafka`` and ``redis`` services, run natively."""
    services = _services()
    props = _kafka_properties(services["kafka"]["environment"])
    expected = {"process.roles", "controller.listener.names", "listener.security.protocol.map"}
    extra = {k: v for k, v in props.items() if k not in KAFKA_ADDRESSING | expected}
    cluster = KafkaCluster(
        workdir=tmp_path / "kafka",
        cluster_id=services["kafka"]["environment"]["CLUSTER_ID"],  # formatted with it
        extra_config=extra,
    )
    port = free_port()
    command = services["redis"]["command"]
    assert command[0] == "redis-server"
    (tmp_path / "redis").mkdir()
    with (tmp_path / "redis.log").open("wb") as log:
        redis_proc = subprocess.Popen(
            [
                redis_server_binary(),
                *command[1:],  # the service's own options (persistence)
                *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path / "redis")),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        wait_port(port, redis_proc, "redis-server", 20)
        wait_ping(url, 20)
        cluster.start()
        config = (cluster.members[0].config).read_text()
        for key in expected:  # what the file says is what the native broker runs
            assert f"{key}={props[key]}\n" in config, key
        yield cluster.bootstrap, url
    finally:
        cluster.stop()
        stop_process(redis_proc)


def test_every_compose_service_command_runs_against_native_kafka_and_redis(
    native: tuple[str, str], tmp_path: Path
) -> None:
    bootstrap, url = native
    services = _services()
    api_port = free_port()

    def argv(name: str, *args: str) -> list[str]:
        """The container's ``distillguard …`` (image ENTRYPOINT + service command)."""
        s = services[name]
        entry = s.get("entrypoint") or ["distillguard"]
        assert entry[0] == "distillguard"
        command = list(args) if args else list(s.get("command") or [])
        command = [
            {"0.0.0.0": "127.0.0.1", "8000": str(api_port)}.get(c, c)  # loopback only
            for c in command
        ]
        return [sys.executable, "-m", "distillguard", *entry[1:], *command]

    def env(name: str) -> dict[str, str]:
        out = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
        for k, v in services[name]["environment"].items():
            out[k] = str(v).replace("kafka:9092", bootstrap).replace("redis://redis:6379", url[:-2])
        return out

    assert env("topics")["DISTILLGUARD_REDIS_URL"] == url
    topics = subprocess.run(argv("topics"), env=env("topics"), cwd=ROOT, capture_output=True)
    assert topics.returncode == 0, topics.stderr.decode()[-3000:]
    children: list[subprocess.Popen[bytes]] = []
    try:
        for name in ("worker-1", "worker-2", "cluster-worker", "api"):
            with (tmp_path / f"{name}.log").open("wb") as log:
                children.append(
                    subprocess.Popen(
                        argv(name), env=env(name), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
                    )
                )
        api = f"http://127.0.0.1:{api_port}"
        wait_for(lambda: _healthy(api), 60, "the API")
        key_run = subprocess.run(
            argv("api", "keys", "create", "--role", "analyst", "--name", "me"),
            env=env("api"),
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert key_run.returncode == 0, key_run.stderr[-2000:]
        key = key_run.stdout.strip().splitlines()[-1]

        # `produce /data/events.jsonl`, the ./data volume being a directory here
        data = tmp_path / "data"
        data.mkdir()
        messages = list(stream(3_000, accounts=60, seed=21))
        (data / "events.jsonl").write_bytes(b"\n".join(m.value for m in messages) + b"\n")
        mount = services["produce"]["volumes"][0].split(":")[1]
        inside = f"{mount}/events.jsonl"  # the path the header's example passes
        produce = subprocess.run(
            argv("produce", inside.replace(mount, str(data), 1)),
            env=env("produce"),
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert produce.returncode == 0, produce.stderr[-3000:]
        assert "published 3000 events" in produce.stdout, produce.stdout

        client = redis.Redis.from_url(url)
        expected = Counter(m.key for m in messages if m.valid)

        def counts() -> Counter[str]:
            raw = cast("dict[bytes, bytes]", client.hgetall(schema.ACCOUNT_REQUESTS))
            return Counter({k.decode(): int(v) for k, v in raw.items()})

        wait_for(lambda: counts() == expected, 120, "both workers to count every event")
        assert all(c.poll() is None for c in children), "a service exited"
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        group = env("worker-1").get("DISTILLGUARD_WORKER__GROUP_ID", "distillguard-worker")
        described = admin.describe_groups([group])[group]
        admin.close()
        assert len(described["members"]) == 2, described  # both workers share the partitions
        # the cluster worker read everything they forwarded (its own group, all partitions)
        requests = env("worker-1").get("DISTILLGUARD_TOPICS__REQUESTS", "api-requests")
        wait_for(
            lambda: _cluster_stage_requests(client, group, requests) == expected.total(),
            120,
            "the cluster worker to take every forwarded event",
        )

        account = messages[0].key
        resp = httpx.get(
            f"{api}/v1/accounts/{account}/risk", headers={"Authorization": f"Bearer {key}"}
        )
        assert resp.status_code == 200, resp.text
        assert orjson.loads(resp.content)["account_id"] == account
    finally:
        for child in reversed(children):
            stop_process(child, timeout_s=30)


def _cluster_stage_requests(client: redis.Redis, group: str, requests: str) -> int:
    """Events the cluster worker's last checkpoint covers (its member table's counts)."""
    shared = Checkpointer(client, f"{group}-cluster", f"{requests}.linkage", 0).load_shared()
    if shared is None:
        return 0
    members = decode_shared(shared.state).members
    return sum(members.requests.values()) if members is not None else 0


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
