"""``distillguard serve`` and ``distillguard keys create|list|revoke``."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from distillguard.settings import get_settings

keys = typer.Typer(
    help="Create, list and revoke API keys (stored hashed in Redis).", no_args_is_help=True
)
CLI_ACTOR = "cli"


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: api.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: api.port).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Worker processes (rate limits and the key cache are per process)."
        ),
    ] = 1,
) -> None:
    """Run the HTTP API (Redis from DISTILLGUARD_REDIS_URL / settings)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "distillguard.api.app:create_app",
        factory=True,
        workers=workers,
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_level="warning",
        access_log=False,
        # open SSE streams never finish by themselves: without a bound, SIGTERM
        # would wait for every analyst to close their tab
        timeout_graceful_shutdown=3,
    )


def _client():  # type: ignore[no-untyped-def]
    from distillguard.store.connection import async_client

    return async_client(get_settings().redis_url, timeout_s=5.0)


@keys.command("create")
def create(
    role: Annotated[str, typer.Option(help="service | analyst | admin")],
    name: Annotated[str, typer.Option(help="Who or what holds the key.")],
) -> None:
    """Create a key; the key itself is printed once, alone on the last line."""
    from distillguard.store import apikeys
    from distillguard.store.models import ROLES

    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")

    async def run() -> tuple[str, str]:
        client = _client()
        try:
            record, key = await apikeys.create_key(client, role, name, CLI_ACTOR)
            return record.key_id, key
        finally:
            await client.aclose()

    key_id, key = asyncio.run(run())
    typer.echo(f"created key {key_id} (role {role}, name {name}); it is not shown again:")
    typer.echo(key)


@keys.command("list")
def list_() -> None:
    """Every key: id, role, name, created, revoked."""
    from distillguard.store import apikeys

    async def run() -> list[apikeys.ApiKeyRecord]:
        client = _client()
        try:
            return await apikeys.list_keys(client)
        finally:
            await client.aclose()

    for r in asyncio.run(run()):
        typer.echo(
            f"{r.key_id}\t{r.role}\t{r.name}\t{r.created_at}\t"
            f"{'revoked ' + r.revoked_at if r.revoked_at else 'active'}"
        )


@keys.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`).")]) -> None:
    """Revoke a key (API processes stop accepting it within api.key_cache_s)."""
    from distillguard.store import apikeys

    async def run() -> apikeys.ApiKeyRecord | None:
        client = _client()
        try:
            return await apikeys.revoke_key(client, key_id, CLI_ACTOR)
        finally:
            await client.aclose()

    record = asyncio.run(run())
    if record is None:
        typer.echo(f"no key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id} at {record.revoked_at}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys, name="keys")
