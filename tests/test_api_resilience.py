"""Redis goes away and comes back: the API answers 503 fast, is unready, then recovers."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import redis

from distillguard.infra import free_port, stop_process
from distillguard.records import AccountRisk, dumps
from distillguard.store import schema
from distillguard.store.apikeys import new_key
from tests.helpers.live_api import ApiServer, start_valkey


def test_redis_outage_gives_fast_503_and_self_recovery(tmp_path: Path) -> None:
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    record, key = new_key("service", "gateway")
    auth = {"Authorization": f"Bearer {key}"}
    ana_record, ana_key = new_key("analyst", "ana")
    analyst = {"Authorization": f"Bearer {ana_key}"}

    def seed() -> None:  # no persistence: a restarted Valkey is empty
        client = redis.Redis.from_url(redis_url)
        client.set(schema.api_key(record.key_id), dumps(record))
        client.set(schema.api_key(ana_record.key_id), dumps(ana_record))
        client.set(
            schema.risk("acct"), dumps(AccountRisk(account_id="acct", risk=0.5, level="medium"))
        )
        client.close()

    valkey = start_valkey(port, tmp_path)
    try:
        seed()
        # keys stay cached through the outage, so the 503s below come from the data
        # reads themselves, not from authentication
        with ApiServer(redis_url, env={"DISTILLGUARD_API__KEY_CACHE_S": "60"}) as api:
            risk_url = f"{api.url}/v1/accounts/acct/risk"
            assert httpx.get(risk_url, headers=auth).json()["risk"] == 0.5
            assert httpx.get(f"{api.url}/v1/clusters", headers=analyst).status_code == 200

            # a hung Redis (accepts nothing, answers nothing) costs one socket timeout
            os.kill(valkey.pid, signal.SIGSTOP)
            try:
                start = time.monotonic()
                resp = httpx.get(risk_url, headers=auth, timeout=10)
                assert resp.status_code == 503 and time.monotonic() - start < 2.0
            finally:
                os.kill(valkey.pid, signal.SIGCONT)
            assert _recovers(risk_url, auth)

            # a dead Redis: connection refused, 503 at once
            stop_process(valkey)
            for _ in range(3):
                start = time.monotonic()
                resp = httpx.get(risk_url, headers=auth, timeout=10)
                elapsed = time.monotonic() - start
                assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
                assert elapsed < 2.0, f"503 took {elapsed:.2f}s"  # 0.25 s Redis timeout
            assert httpx.get(f"{api.url}/readyz", timeout=10).status_code == 503
            assert httpx.get(f"{api.url}/healthz", timeout=10).status_code == 200
            batch = httpx.post(
                f"{api.url}/v1/risk:batch", headers=auth, timeout=10, json={"account_ids": ["acct"]}
            )
            assert batch.status_code == 503
            stream = httpx.get(f"{api.url}/v1/alerts/stream", headers=analyst, timeout=10)
            assert stream.status_code == 503
            _, unseen = new_key("admin", "never cached")  # authentication needs Redis too
            unseen_auth = {"Authorization": f"Bearer {unseen}"}
            assert httpx.get(risk_url, headers=unseen_auth, timeout=10).status_code == 503

            valkey = start_valkey(port, tmp_path)
            seed()
            assert _recovers(f"{api.url}/readyz", {})
            assert httpx.get(risk_url, headers=auth).json()["risk"] == 0.5
    finally:
        stop_process(valkey)


def _recovers(url: str, headers: dict[str, str], within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if httpx.get(url, headers=headers, timeout=10).status_code == 200:
            return True
        time.sleep(0.1)
    return False
