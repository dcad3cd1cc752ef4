"""``distillguard demo``: the whole product, live, on the embedded stack.

Starts the broker and Valkey, the worker, the API with its console, and the
simulator streaming the ``default`` scenario in compressed time; creates an analyst
key; shows what flows until Ctrl-C; then stops everything it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Annotated, cast

import redis
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from distillguard.infra import EmbeddedStack, free_port, stop_process
from distillguard.records import Alert, loads
from distillguard.settings import PROJECT_ROOT, get_settings
from distillguard.store import schema
from distillguard.store.connection import text
from distillguard.stream.admin import topic_ids
from distillguard.stream.checkpoint import COUNTS_KEY, STATS_KEY, Checkpointer

console = Console()
LEVEL_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "green"}


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "distillguard", *args],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with code {proc.returncode}; see its log")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _create_key(env: dict[str, str], role: str, name: str) -> str:
    """Through the documented CLI: the key is alone on the last line of its output."""
    out = subprocess.run(
        [sys.executable, "-m", "distillguard", "keys", "create", "--role", role, "--name", name],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _recent_alerts(client: redis.Redis, n: int = 8) -> list[Alert]:
    # members only (no withscores), as bytes: redis-py's reply type cannot tell
    members = cast("list[bytes]", client.zrange(schema.ALERTS_ALL, 0, n - 1, desc=True))
    ids = [schema.member_alert_id(m) for m in members]
    raws = client.mget([schema.alert(i) for i in ids]) if ids else []
    return [loads(r, Alert) for r in raws if r is not None]


def _view(client: redis.Redis, started: float, header: str) -> Group:
    stats = {text(k): text(v) for k, v in client.hgetall(STATS_KEY).items()}
    fields = ("processed", "rejected", "duplicates", "lag")
    line = "   ".join(f"[bold]{n}[/bold] {int(float(stats.get(n, 0))):,}" for n in fields)
    n_alerts = client.zcard(schema.ALERTS_ALL)
    n_open = client.hlen(schema.ALERTS_OPEN)
    line += f"   [bold]alerts[/bold] {n_alerts:,} ({n_open:,} open)"
    line += f"   [bold]clusters[/bold] {client.zcard(schema.CLUSTERS):,}"

    alerts = Table(title="newest alerts", expand=True)
    for col in ("created", "subject", "level", "risk", "why"):
        alerts.add_column(col, overflow="fold")
    for a in _recent_alerts(client):
        subject = (
            a.subject_id
            if a.subject_type == "account"
            else (f"cluster {a.subject_id} ({len(a.members)} accounts)")
        )
        why = ", ".join(f"{r.signal}={r.value:.3g}" for r in a.reasons[:3])
        alerts.add_row(
            a.created_at[11:19],
            subject,
            f"[{LEVEL_STYLE.get(a.level, '')}]{a.level}[/]",
            f"{a.risk:.2f}",
            why,
        )

    counts = client.hgetall(COUNTS_KEY)
    top = sorted(((int(v), text(k)) for k, v in counts.items()), reverse=True)[:5]
    busiest = Table(title=f"busiest of {len(counts):,} accounts")
    busiest.add_column("account")
    busiest.add_column("requests", justify="right")
    for n, account in top:
        busiest.add_row(account, f"{n:,}")
    elapsed = time.monotonic() - started
    title = f"distillguard demo · {elapsed:,.0f}s · Ctrl-C stops everything"
    return Group(Panel(f"{header}\n{line}", title=title), alerts, busiest)


def demo(
    scenario: Annotated[str, typer.Option(help="Scenario streamed live.")] = "default",
    rate: Annotated[float, typer.Option(help="Events per second fed to the broker.")] = 3000.0,
    port: Annotated[
        int, typer.Option(help="API/console port (a free one if taken, or with 0).")
    ] = 8000,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
) -> None:
    """Run the whole product live: broker, Valkey, worker, API + console, simulated traffic."""
    settings = get_settings()
    run_dir = PROJECT_ROOT / ".distillguard" / "demo"
    run_dir.mkdir(parents=True, exist_ok=True)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    if port == 0 or not _port_free(port):
        port = free_port()
    children: list[subprocess.Popen[bytes]] = []
    stack = EmbeddedStack(topics=settings.topics)
    console.print(f"[bold]starting[/bold] the broker ({stack.broker}) and {stack.redis_kind}…")
    # One directory per kind of stack: Redis cannot read Valkey's append-only file.
    default_kinds = (stack.broker, stack.redis_kind) == ("tansu", "valkey")
    stack.workdir = run_dir / (
        "stack" if default_kinds else f"stack-{stack.broker}-{stack.redis_kind}"
    )
    with stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
        env.update(stack.env())
        # Valkey keeps keys, alerts and the worker's checkpoint between demos; Tansu keeps
        # no topic. A checkpoint taken on a topic that is gone (another topic id) goes;
        # one of a broker that kept its log (Kafka) stays, and the worker resumes.
        w = settings.worker
        checkpoint = Checkpointer(
            redis.Redis.from_url(stack.redis_url), w.group_id, settings.topics.requests, 0
        )
        try:
            stored = checkpoint.load_shared()
        except ValueError:  # unreadable: starting over is all the demo can do
            stored = None
        topic = settings.topics.requests
        if stored is None or stored.topic_id != topic_ids(stack.bootstrap, [topic]).get(topic):
            checkpoint.reset()
        try:
            console.print("[bold]starting[/bold] worker, API and console…")
            children.append(_spawn(["worker"], env, run_dir / "worker.log"))
            api = _spawn(
                ["serve", "--host", "127.0.0.1", "--port", str(port)], env, run_dir / "api.log"
            )
            children.append(api)
            base = f"http://127.0.0.1:{port}"
            _wait_http(f"{base}/healthz", api)
            key = _create_key(env, "analyst", "demo-analyst")
            console.print(f"[bold]streaming[/bold] scenario {scenario!r} at {rate:,.0f} events/s…")
            children.append(
                _spawn(
                    ["simulate", "--scenario", scenario, "--to-kafka", "--rate", str(rate)],
                    env,
                    run_dir / "simulate.log",
                )
            )
            header = (
                f"console  [link={base}/console]{base}/console[/link]\n"
                f"analyst key  [bold]{key}[/bold]\n"
                f"API docs  {base}/docs · logs in "
                f"{run_dir.relative_to(PROJECT_ROOT)}/"
            )
            console.print(Panel(header, title="sign in to the console with this key"))
            client = redis.Redis.from_url(stack.redis_url)
            started = time.monotonic()
            with Live(
                _view(client, started, header), console=console, refresh_per_second=1
            ) as live:
                while not stopping:
                    if duration is not None and time.monotonic() - started > duration:
                        break
                    time.sleep(1.0)
                    live.update(_view(client, started, header))
        except KeyboardInterrupt:
            pass
        finally:
            console.print("[bold]stopping[/bold] simulator, API, worker, broker and Valkey…")
            for child in reversed(children):
                stop_process(child, timeout_s=15)
    console.print("stopped cleanly.")


def register(app: typer.Typer) -> None:
    app.command()(demo)
