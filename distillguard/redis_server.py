"""Real Redis (Debian's ``redis-server``) on loopback, next to the embedded Valkey.

Valkey forked from Redis 7.2 and speaks the same protocol, but production runs Redis,
so the suite runs on both. ``redis-server`` is a system package, installed by the
setup (``make redis-server``, as Chromium is), never downloaded at run time.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from distillguard.infra import (
    die_with_parent,
    free_port,
    server_args,
    stop_process,
    wait_ping,
    wait_port,
)


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is missing: run `make redis-server` (apt-get install redis-server)"
        )
    return binary


def redis_args(port: int, workdir: Path, *, appendonly: bool = False) -> list[str]:
    """A loopback Redis with the persistence of ``infra.valkey_args`` (same options).

    No config file, so Debian's /etc/redis/redis.conf (port 6379, a pid file, a system
    log) plays no part; ``appendonly=True`` is the stack's Redis (an AOF in ``workdir``,
    fsynced once a second), without it nothing is written.
    """
    return [
        *server_args(redis_server_binary(), port, workdir, appendonly=appendonly),
        "--daemonize",
        "no",
    ]


@dataclass
class RedisServer:
    """One ``redis-server`` on a free loopback port that dies with this process."""

    port: int = 0
    workdir: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 20.0) -> RedisServer:
        self.port = self.port or free_port()
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="distillguard-redis-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                redis_args(self.port, self.workdir),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        try:
            wait_port(self.port, self.proc, "redis-server", timeout_s)
            wait_ping(self.url, timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
