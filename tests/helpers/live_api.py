"""A Valkey and the API as child processes on loopback: for tests and the benchmark.

Real processes rather than an in-process test client, so what is measured and tested
is what ``distillguard serve`` does: uvicorn, sockets, Redis timeouts and all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from distillguard.infra import die_with_parent, free_port, stop_process, valkey_args, wait_port
from distillguard.settings import PROJECT_ROOT


def start_valkey(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """A Valkey without persistence on ``port`` (dies with this process)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "valkey.log").open("ab") as log:
        proc = subprocess.Popen(
            valkey_args(port, workdir),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
    wait_port(port, proc, "Valkey", 20.0)
    return proc


@dataclass
class ApiServer:
    """``distillguard serve`` in a child process; a context manager."""

    redis_url: str
    env: Mapping[str, str] = field(default_factory=dict)
    port: int = 0
    workers: int = 1
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> ApiServer:
        self.port = self.port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
        env.update(self.env)
        env["DISTILLGUARD_REDIS_URL"] = self.redis_url
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distillguard",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"API exited with code {self.proc.returncode} at start-up")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1.0) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("API did not become healthy")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class LiveApi:
    url: str
    redis_url: str


@contextmanager
def live_api(workdir: Path, env: Mapping[str, str] | None = None) -> Iterator[LiveApi]:
    """A private Valkey and ``distillguard serve`` against it, both stopped on exit.

    Tests own their Valkey (rather than the shared stack's) because some of them stop
    and restart it to check the API's behaviour while Redis is down.
    """
    port = free_port()
    valkey = start_valkey(port, workdir)
    redis_url = f"redis://127.0.0.1:{port}/0"
    try:
        with ApiServer(redis_url, env=dict(env or {})) as api:
            yield LiveApi(api.url, redis_url)
    finally:
        stop_process(valkey)
