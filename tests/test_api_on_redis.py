"""The API tests again, on real Redis (Debian's ``redis-server``) instead of Valkey.

``test_api`` runs the deployed API (uvicorn in a child process) against a throw-away
Valkey of its own. Production runs Redis: the same tests run here with the ``live``
fixture swapped for a real Redis; every test function is imported unchanged, so the
two runs can never drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from distillguard.redis_server import RedisServer
from tests import test_api
from tests.helpers.live_api import ApiServer, LiveApi
from tests.test_api import *  # noqa: F403  (every test_* and fixture, collected here too)


@pytest.fixture(scope="module")  # type: ignore[no-redef]  # overrides the import
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """``test_api``'s live API, on Redis instead of Valkey (same config file)."""
    workdir = Path(tmp_path_factory.mktemp("api-redis"))
    (workdir / "test.yaml").write_text(test_api.TEST_CONFIG)
    with (
        RedisServer(workdir=workdir / "redis") as server,
        ApiServer(server.url, env={"DISTILLGUARD_CONFIG": str(workdir / "test.yaml")}) as api,
    ):
        yield LiveApi(api.url, server.url)


def test_the_store_under_the_api_is_redis(live: LiveApi) -> None:
    info = redis.Redis.from_url(live.redis_url).info("server")
    assert "redis_version" in info and "valkey_version" not in info
