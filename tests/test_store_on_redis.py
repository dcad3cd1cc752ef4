"""The store tests again, on real Redis (Debian's ``redis-server``) instead of Valkey.

``test_store`` checks the Redis store (writer de-duplication, suppression, lifecycle,
feeds) against a throw-away Valkey. Production runs Redis: the
same tests run here with the ``redis_url`` fixture swapped for a real Redis; every
test function is imported unchanged, so the two runs can never drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from distillguard.redis_server import RedisServer
from tests.test_store import *  # noqa: F403  (every test_* and fixture, collected here too)


@pytest.fixture(scope="module")  # type: ignore[no-redef]  # overrides the import
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``test_store``'s server, Redis instead of Valkey."""
    with RedisServer(workdir=Path(tmp_path_factory.mktemp("store-redis"))) as server:
        yield server.url


def test_the_store_under_test_is_redis(redis_url: str) -> None:
    info = redis.Redis.from_url(redis_url).info("server")
    assert "redis_version" in info and "valkey_version" not in info
