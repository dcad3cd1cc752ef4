"""``distillguard demo``: the whole product, live, on the embedded stack.

Starts the broker and Valkey, the worker, the API (when installed) and a traffic
feed, then shows what flows until Ctrl-C, and stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import redis
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from distillguard.infra import EmbeddedStack, stop_process
from distillguard.settings import PROJECT_ROOT, get_settings
from distillguard.stream.checkpoint import COUNTS_KEY, STATS_KEY

console = Console()


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


def _synthetic_feed(stack: EmbeddedStack, topic: str, rate: float, stop: threading.Event) -> None:
    """Valid events with a sprinkle of malformed ones, at ``rate`` per second."""
    from distillguard.stream.producer import EventPublisher
    from distillguard.synthetic import stream

    with EventPublisher(stack.bootstrap, topic) as pub:
        start = time.monotonic()
        for i, m in enumerate(stream(10**9, accounts=500, malformed_share=0.005)):
            if stop.is_set():
                break
            pub.send(m.key, m.value)
            ahead = i / rate - (time.monotonic() - start)
            if ahead > 0.05:
                time.sleep(ahead)


def _view(client: redis.Redis, started: float) -> Group:
    stats = {k.decode(): v.decode() for k, v in client.hgetall(STATS_KEY).items()}
    fields = ("processed", "rejected", "duplicates", "lag")
    head = Table.grid(padding=(0, 3))
    for _ in fields:
        head.add_column()
    head.add_row(
        *(
            f"[bold]{n}[/bold] {stats.get(n, '0')}"
            for n in ("processed", "rejected", "duplicates", "lag")
        )
    )
    counts = client.hgetall(COUNTS_KEY)
    top = sorted(((int(v), k.decode()) for k, v in counts.items()), reverse=True)[:10]
    table = Table(title=f"busiest accounts ({len(counts)} seen)", expand=False)
    table.add_column("account")
    table.add_column("requests", justify="right")
    for n, account in top:
        table.add_row(account, f"{n:,}")
    elapsed = time.monotonic() - started
    return Group(Panel(head, title=f"distillguard demo · {elapsed:,.0f}s · Ctrl-C stops"), table)


def demo(
    rate: Annotated[float, typer.Option(help="Events per second fed to the broker.")] = 2000.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
) -> None:
    """Start the embedded stack, the worker and a traffic feed; show counts flowing live."""
    settings = get_settings()
    run_dir = PROJECT_ROOT / ".distillguard" / "demo"
    run_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    children: list[subprocess.Popen[bytes]] = []
    console.print("[bold]starting[/bold] embedded Kafka-protocol broker (Tansu) and Valkey…")
    with EmbeddedStack(topics=settings.topics, workdir=run_dir / "stack") as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
        env.update(stack.env())
        children.append(_spawn(["worker"], env, run_dir / "worker.log"))
        console.print(
            f"broker {stack.bootstrap} · redis {stack.redis_url} · "
            f"logs in {run_dir.relative_to(PROJECT_ROOT)}/"
        )
        feeder = threading.Thread(
            target=_synthetic_feed,
            args=(stack, settings.topics.requests, rate, stop),
            daemon=True,
        )
        feeder.start()
        client = redis.Redis.from_url(stack.redis_url)
        started = time.monotonic()
        try:
            with Live(_view(client, started), console=console, refresh_per_second=2) as live:
                while not stop.is_set():
                    if duration is not None and time.monotonic() - started > duration:
                        break
                    time.sleep(0.5)
                    live.update(_view(client, started))
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            console.print("[bold]stopping[/bold] feed, worker, broker and Valkey…")
            feeder.join(5)
            for child in children:
                stop_process(child, timeout_s=15)
    console.print("stopped cleanly.")


def register(app: typer.Typer) -> None:
    app.command()(demo)
