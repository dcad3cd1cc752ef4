"""``distillguard infra up|down|status``: the embedded stack as a background service."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from distillguard.settings import PROJECT_ROOT, get_settings

STATE_FILE = PROJECT_ROOT / ".distillguard" / "infra.json"

infra = typer.Typer(help="Start or stop the embedded Kafka-protocol broker and Valkey.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _read_state() -> dict[str, Any] | None:
    if not STATE_FILE.exists():
        return None
    state: dict[str, Any] = json.loads(STATE_FILE.read_text())
    return state


@infra.command("up")
def up(
    broker: Annotated[
        str, typer.Option(help="tansu (embedded) or kafka (Apache Kafka, KRaft, via Maven).")
    ] = "tansu",
    redis: Annotated[
        str, typer.Option(help="valkey (embedded) or redis (Debian's redis-server).")
    ] = "valkey",
) -> None:
    """Start broker + Valkey in the background and print the variables that reach them."""
    from distillguard.infra import EmbeddedStack

    if broker not in ("tansu", "kafka") or redis not in ("valkey", "redis"):
        raise typer.BadParameter("--broker tansu|kafka, --redis valkey|redis")
    state = _read_state()
    if state and all(_alive(int(p)) for p in state["pids"]):
        typer.echo("embedded stack already running:")
    else:
        workdir = STATE_FILE.parent / "run"
        stack = EmbeddedStack(
            topics=get_settings().topics,
            detached=True,
            workdir=workdir,
            broker=broker,
            redis_kind=redis,
        ).start()
        state = {"pids": [p.pid for p in stack.procs], "env": stack.env()}
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        STATE_FILE.write_text(json.dumps(state, indent=2))
        typer.echo("embedded stack started (stop it with `distillguard infra down`):")
    for key, value in state["env"].items():
        typer.echo(f"export {key}={value}")


@infra.command("down")
def down() -> None:
    """Stop the background stack started by ``infra up``."""
    from distillguard.infra import stop_process

    state = _read_state()
    if state is None:
        typer.echo("no embedded stack recorded")
        return
    for pid in state["pids"]:
        stop_process(int(pid), timeout_s=30.0)  # a JVM's controlled shutdown takes seconds
    STATE_FILE.unlink()
    typer.echo("embedded stack stopped")


@infra.command("status")
def status() -> None:
    """Say whether the background stack is running."""
    state = _read_state()
    if state is None:
        typer.echo("not running")
        raise typer.Exit(1)
    alive = [int(p) for p in state["pids"] if _alive(int(p))]
    typer.echo(f"{len(alive)}/{len(state['pids'])} processes alive")
    raise typer.Exit(0 if alive else 1)


def register(app: typer.Typer) -> None:
    app.add_typer(infra, name="infra")
