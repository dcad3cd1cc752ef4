"""Redis replies as the tests' clients return them (bytes), for the type checker.

redis-py types a reply as bytes or str (it cannot know ``decode_responses``) and a
stream entry as possibly None; these helpers say once what our clients return.
"""

from __future__ import annotations

from typing import cast

import redis


def value(client: redis.Redis, key: str | bytes) -> bytes:
    """The string at ``key``, which the test expects to exist."""
    raw = client.get(key)
    assert isinstance(raw, bytes), f"{key!r}: {raw!r}"
    return raw


def items(client: redis.Redis, key: str) -> list[bytes]:
    """A whole list."""
    return cast("list[bytes]", client.lrange(key, 0, -1))


def members(client: redis.Redis, key: str) -> list[bytes]:
    """A whole sorted set's members (no scores), lowest score first."""
    return cast("list[bytes]", client.zrange(key, 0, -1))


def hash_fields(client: redis.Redis, key: str) -> dict[bytes, bytes]:
    """A whole hash."""
    return cast("dict[bytes, bytes]", client.hgetall(key))


def stream_fields(client: redis.Redis, key: str) -> list[dict[bytes, bytes]]:
    """The field maps of a stream's entries, oldest first."""
    return [f for _, f in cast("list[tuple[bytes, dict[bytes, bytes]]]", client.xrange(key))]
