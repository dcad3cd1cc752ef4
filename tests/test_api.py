"""The HTTP API as deployed: live uvicorn (``distillguard serve``) against a real Valkey."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from distillguard.records import AccountRisk, Alert, Cluster, Reason, dumps, iso
from distillguard.store import schema
from distillguard.store.apikeys import new_key
from distillguard.store.feedback import read_labels
from distillguard.store.models import Role, Suppression
from distillguard.store.writer import AlertWriter
from tests.conftest import flushed
from tests.helpers.live_api import LiveApi, live_api
from tests.helpers.replies import stream_fields, value

ROLES: tuple[Role, ...] = ("service", "analyst", "admin")
T0 = 1_795_168_800.0
TEST_CONFIG = """
api:
  key_cache_s: 0.5
  rate_limits:
    service: {rate_per_s: 5000, burst: 10000}
    analyst: {rate_per_s: 0.05, burst: 40}
    admin: {rate_per_s: 100000, burst: 100000}
    # the role matrix sends a hundred keyless requests from one address
    unauthenticated: {rate_per_s: 100000, burst: 100000}
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    workdir = Path(tmp_path_factory.mktemp("api"))
    (workdir / "test.yaml").write_text(TEST_CONFIG)
    with live_api(workdir, env={"DISTILLGUARD_CONFIG": str(workdir / "test.yaml")}) as api:
        yield api


@pytest.fixture
def client(live: LiveApi) -> Iterator[redis.Redis]:
    yield from flushed(live.redis_url)


def make_key(client: redis.Redis, role: Role, name: str = "t") -> tuple[str, str]:
    """(key_id, key), stored as the CLI would store it."""
    record, key = new_key(role, name)
    client.set(schema.api_key(record.key_id), dumps(record))
    client.sadd(schema.API_KEYS, record.key_id)
    return record.key_id, key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_alert(alert_id: str, subject: str, risk: float = 0.95, **kw: Any) -> Alert:
    return Alert(
        alert_id=alert_id,
        subject_type="account",
        subject_id=subject,
        risk=risk,
        level="critical" if risk >= 0.9 else "high",
        created_at=iso(T0),
        updated_at=iso(T0),
        reasons=[Reason(signal="cot_elicitation_rate", value=0.8)],
        **kw,
    )


def seed(client: redis.Redis) -> None:
    """One of everything the routes read, with ids the route table below names."""
    writer = AlertWriter(client)
    alerts = [
        make_alert(
            f"{op}_{role}",
            f"acct_{op}_{role}",
            features={"cot": 0.8},
            sample_prompts=["Explain step by step " + "x" * 700],
        )
        for op in ("get", "ack", "rev", "note")
        for role in ROLES
    ]
    cluster = Cluster(
        cluster_id="clu_1", members=["acct_get_admin", "b"], risk=0.9, level="critical"
    )
    risk = AccountRisk(
        account_id="acct_1",
        risk=0.93,
        level="critical",
        reasons=[Reason(signal="cot_elicitation_rate", value=0.81, population_percentile=99.9)],
        cluster_id="clu_1",
        updated_at=iso(T0),
    )
    writer.write(
        [risk],
        alerts,
        [cluster],
        features={"acct_get_admin": {"cot": 0.5}},
        prompts={"acct_get_admin": ["y" * 900]},
    )
    for role in ROLES:
        rule = Suppression(
            suppression_id=f"sup_{role}",
            scope="org",
            value="o",
            reason="r",
            created_by="t",
            created_at=iso(T0),
        )
        client.hset(schema.SUPPRESSIONS, rule.suppression_id, dumps(rule))


# (method, path with {role}, json body, roles allowed, status on success)
ROUTES: list[tuple[str, str, object, tuple[Role, ...], int]] = [
    ("GET", "/v1/accounts/acct_1/risk", None, ROLES, 200),
    ("POST", "/v1/risk:batch", {"account_ids": ["acct_1", "x"]}, ROLES, 200),
    ("GET", "/v1/alerts?status=open&limit=5", None, ("analyst", "admin"), 200),
    ("GET", "/v1/alerts/get_{role}", None, ("analyst", "admin"), 200),
    ("POST", "/v1/alerts/ack_{role}/ack", {"note": "mine"}, ("analyst", "admin"), 200),
    ("POST", "/v1/alerts/rev_{role}/review", {"label": "dismiss"}, ("analyst", "admin"), 200),
    ("POST", "/v1/alerts/note_{role}/notes", {"note": "n"}, ("analyst", "admin"), 200),
    ("POST", "/v1/alerts/get_{role}/assign", {"assignee": "bo"}, ("analyst", "admin"), 200),
    ("GET", "/v1/alerts/stream", None, ("analyst", "admin"), 200),
    ("GET", "/v1/clusters", None, ("analyst", "admin"), 200),
    ("GET", "/v1/clusters/clu_1", None, ("analyst", "admin"), 200),
    ("GET", "/v1/clusters/clu_1/timeline", None, ("analyst", "admin"), 200),
    ("GET", "/v1/suppressions", None, ("admin",), 200),
    (
        "POST",
        "/v1/suppressions",
        {"scope": "account", "value": "a", "reason": "partner"},
        ("admin",),
        201,
    ),
    ("GET", "/v1/suppressions/sup_{role}", None, ("admin",), 200),
    ("PATCH", "/v1/suppressions/sup_{role}", {"reason": "still a partner"}, ("admin",), 200),
    ("DELETE", "/v1/suppressions/sup_{role}", None, ("admin",), 204),
    ("GET", "/v1/keys", None, ("admin",), 200),
    ("POST", "/v1/keys", {"role": "service", "name": "gw"}, ("admin",), 201),
    ("DELETE", "/v1/keys/{victim}", None, ("admin",), 200),
    ("GET", "/v1/audit", None, ("admin",), 200),
    ("GET", "/metrics", None, ("analyst", "admin"), 200),
]


def call(url: str, method: str, path: str, body: object, headers: dict[str, str]) -> int:
    if path.endswith("/stream"):  # SSE: the status is all we wait for
        with httpx.stream(method, url + path, headers=headers, timeout=5) as resp:
            return resp.status_code
    return httpx.request(method, url + path, json=body, headers=headers, timeout=5).status_code


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed", "ok"), ROUTES, ids=[f"{m} {p}" for m, p, *_ in ROUTES]
)
def test_role_matrix(
    live: LiveApi,
    client: redis.Redis,
    method: str,
    path: str,
    body: object,
    allowed: tuple[Role, ...],
    ok: int,
) -> None:
    seed(client)
    keys = {role: make_key(client, role)[1] for role in ROLES}
    victim, _ = make_key(client, "service", "victim")
    _, revoked = make_key(client, "admin", "gone")
    record = json.loads(value(client, schema.api_key(revoked.split("_")[1])))
    client.set(schema.api_key(record["key_id"]), json.dumps({**record, "revoked_at": iso(T0)}))
    for role in ROLES:
        target = path.format(role=role, victim=victim)
        status = call(live.url, method, target, body, bearer(keys[role]))
        assert status == (ok if role in allowed else 403), (role, target)
    target = path.format(role="admin", victim=victim)
    assert call(live.url, method, target, body, {}) == 401
    assert call(live.url, method, target, body, bearer("dg_000000000000_guess")) == 401
    assert call(live.url, method, target, body, bearer(revoked)) == 401
    assert call(live.url, method, target, body, {"Authorization": "Basic eDp5"}) == 401


def test_health_checks_need_no_key(live: LiveApi, client: redis.Redis) -> None:
    assert httpx.get(live.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(live.url + "/readyz").status_code == 200


def test_risk_lookup_contract(live: LiveApi, client: redis.Redis) -> None:
    seed(client)
    _, key = make_key(client, "service")
    body = httpx.get(live.url + "/v1/accounts/acct_1/risk", headers=bearer(key)).json()
    assert body == {
        "account_id": "acct_1",
        "risk": 0.93,
        "level": "critical",
        "reasons": [
            {
                "signal": "cot_elicitation_rate",
                "value": 0.81,
                "population_percentile": 99.9,
                "detail": None,
            }
        ],
        "cluster_id": "clu_1",
        "updated_at": "2026-11-20T10:00:00Z",
    }
    unknown = httpx.get(live.url + "/v1/accounts/never/risk", headers=bearer(key)).json()
    assert unknown == {
        "account_id": "never",
        "risk": 0.0,
        "level": "low",
        "reasons": [],
        "cluster_id": None,
        "updated_at": None,
    }
    batch = httpx.post(
        live.url + "/v1/risk:batch", headers=bearer(key), json={"account_ids": ["never", "acct_1"]}
    ).json()
    assert [(r["account_id"], r["risk"]) for r in batch["results"]] == [
        ("never", 0.0),
        ("acct_1", 0.93),
    ]
    too_many = {"account_ids": [f"a{i}" for i in range(1001)]}
    assert (
        httpx.post(live.url + "/v1/risk:batch", headers=bearer(key), json=too_many).status_code
        == 422
    )
    thousand = {"account_ids": [f"a{i}" for i in range(1000)]}
    assert (
        len(
            httpx.post(live.url + "/v1/risk:batch", headers=bearer(key), json=thousand).json()[
                "results"
            ]
        )
        == 1000
    )


def test_alert_detail_and_cursor_pages(live: LiveApi, client: redis.Redis) -> None:
    seed(client)
    _, key = make_key(client, "admin")
    detail = httpx.get(live.url + "/v1/alerts/get_admin", headers=bearer(key)).json()
    assert detail["reasons"][0]["signal"] == "cot_elicitation_rate"
    assert [len(p) for p in detail["sample_prompts"]] == [500, 500]
    history = detail["feature_history"]  # the alert's snapshot and the worker's, one batch
    assert sorted(pt["features"]["cot"] for pt in history) == [0.5, 0.8]
    seen, cursor = [], None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(live.url + "/v1/alerts", params=params, headers=bearer(key)).json()
        seen += [a["alert_id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(
        f"{op}_{r}" for op in ("get", "ack", "rev", "note") for r in ROLES
    )
    assert httpx.get(live.url + "/v1/alerts/nope", headers=bearer(key)).status_code == 404


def test_review_reaches_feedback_stream_and_audit_log(live: LiveApi, client: redis.Redis) -> None:
    seed(client)
    key_id, key = make_key(client, "analyst", "ana")
    url = live.url + "/v1/alerts/rev_analyst"
    assert httpx.post(url + "/ack", headers=bearer(key), json={}).json()["assignee"] == (
        f"ana#{key_id}"
    )
    resp = httpx.post(
        url + "/review", headers=bearer(key), json={"label": "confirm", "note": "template farm"}
    )
    assert resp.status_code == 200 and resp.json()["status"] == "confirmed"
    labels, _ = read_labels(client)
    assert [(x.account_id, x.label, x.alert_id, x.features, x.note) for x in labels] == [
        ("acct_rev_analyst", "distiller", "rev_analyst", {"cot": 0.8}, "template farm")
    ]
    audit = [json.loads(f[b"entry"]) for f in stream_fields(client, schema.AUDIT_STREAM)]
    assert [(a["action"], a["target"], a["actor"]) for a in audit] == [
        ("alert.acknowledge", "rev_analyst", f"ana#{key_id}"),
        ("alert.confirm", "rev_analyst", f"ana#{key_id}"),
    ]
    again = httpx.post(url + "/review", headers=bearer(key), json={"label": "dismiss"})
    assert again.status_code == 409
    late = httpx.post(url + "/assign", headers=bearer(key), json={"assignee": "bo"})
    assert late.status_code == 409
    assert len(read_labels(client)[0]) == 1


def test_sse_delivers_new_alert_within_a_second(live: LiveApi, client: redis.Redis) -> None:
    _, key = make_key(client, "analyst")
    events: queue.Queue[tuple[str, float, object]] = queue.Queue()

    def listen() -> None:
        with httpx.stream(
            "GET", live.url + "/v1/alerts/stream", headers=bearer(key), timeout=10
        ) as resp:
            kind = None
            for line in resp.iter_lines():
                if line.startswith(": ready"):
                    events.put(("ready", time.monotonic(), None))
                elif line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.put((str(kind), time.monotonic(), json.loads(line[5:])))
                    if kind == "updated":
                        return

    threading.Thread(target=listen, daemon=True).start()
    assert events.get(timeout=10)[0] == "ready"
    writer = AlertWriter(client)
    start = time.monotonic()
    writer.write([], [make_alert("al_sse", "acct_sse", 0.8)], [])
    kind, received, data = events.get(timeout=5)
    assert kind == "created" and data["alert"]["alert_id"] == "al_sse"  # type: ignore[index]
    assert received - start < 1.0
    writer.write([], [make_alert("other_id", "acct_sse", 0.97)], [])
    kind, _, data = events.get(timeout=5)
    assert kind == "updated" and data["alert"]["risk"] == 0.97  # type: ignore[index]
    assert data["alert"]["alert_id"] == "al_sse"  # type: ignore[index]


def test_rate_limit_answers_429_with_retry_after(live: LiveApi, client: redis.Redis) -> None:
    _, key = make_key(client, "analyst")  # test config: burst 40, then one per 20 s
    statuses = [httpx.get(live.url + "/v1/clusters", headers=bearer(key)) for _ in range(42)]
    assert [r.status_code for r in statuses[:40]] == [200] * 40
    limited = statuses[-1]
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    _, other = make_key(client, "analyst")  # buckets are per key
    assert httpx.get(live.url + "/v1/clusters", headers=bearer(other)).status_code == 200


def test_cli_keys_create_list_revoke(live: LiveApi, client: redis.Redis) -> None:
    env = {**os.environ, "DISTILLGUARD_REDIS_URL": live.redis_url}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "distillguard", "keys", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    key = cli("create", "--role", "analyst", "--name", "ana").strip().splitlines()[-1]
    assert httpx.get(live.url + "/v1/clusters", headers=bearer(key)).status_code == 200
    key_id = key.split("_")[1]
    assert value(client, schema.api_key(key_id)).find(key.split("_", 2)[2].encode()) == -1
    assert f"{key_id}\tanalyst\tana" in cli("list")
    cli("revoke", key_id)
    time.sleep(0.6)  # test config: api.key_cache_s 0.5
    assert httpx.get(live.url + "/v1/clusters", headers=bearer(key)).status_code == 401


def test_metrics_export_requests_and_worker_stats(live: LiveApi, client: redis.Redis) -> None:
    _, key = make_key(client, "admin")
    client.hset(schema.WORKER_STATS, mapping={"processed": 1234, "lag": 17, "note": "x"})
    client.hset(schema.CLUSTER_STAGE_STATS, mapping={"lag": 3})
    httpx.get(live.url + "/v1/accounts/a/risk", headers=bearer(key))
    text = httpx.get(live.url + "/metrics", headers=bearer(key)).text
    assert "distillguard_worker_processed 1234.0" in text
    assert "distillguard_worker_lag 17.0" in text
    assert "distillguard_worker_cluster_lag 3.0" in text  # a split topology's cluster stage
    assert "distillguard_redis_up 1.0" in text
    assert 'route="/v1/accounts/{account_id}/risk",status="200"' in text


def test_metrics_sum_each_workers_own_lag_and_leave_out_workers_gone(
    live: LiveApi, client: redis.Redis
) -> None:
    _, key = make_key(client, "admin")
    client.hset(schema.WORKER_STATS, mapping={"lag": 5})  # the last account worker's
    now = time.time()
    client.hset(
        schema.WORKER_LAG,
        mapping={
            "account:w1": f"5 {now}",
            "account:w2": f"40 {now - 3}",
            "account:gone": f"900 {now - schema.WORKER_LAG_FRESH_S - 60}",
            "cluster:c": f"7 {now}",
            "account:junk": "not a lag",
        },
    )
    text = httpx.get(live.url + "/metrics", headers=bearer(key)).text
    assert "distillguard_worker_lag 45.0" in text  # both live account workers, not the last
    assert "distillguard_worker_cluster_lag 7.0" in text
    assert 'distillguard_worker_instance_lag{worker="account:w2"} 40.0' in text
    assert "account:gone" not in text and "account:junk" not in text


def test_schemathesis_finds_no_server_error_or_schema_violation(
    live: LiveApi, client: redis.Redis, tmp_path: Path
) -> None:
    seed(client)
    _, key = make_key(client, "admin")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{live.url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "12",
            "--seed",
            "7",
            "--exclude-path",
            "/v1/alerts/stream",
            "--generation-database",
            "none",
            "--header",
            f"Authorization: Bearer {key}",
            "--no-color",
            "--request-timeout",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_risk_fast_path_answers_like_the_framework_routes(
    live: LiveApi, client: redis.Redis
) -> None:
    """GET .../risk is served by an ASGI shortcut; its errors must look like FastAPI's."""
    seed(client)
    _, key = make_key(client, "service")
    fast = f"{live.url}/v1/accounts/acct_1/risk"
    routed = f"{live.url}/v1/risk:batch"
    body = {"account_ids": ["acct_1"]}
    for headers in (
        {},
        bearer("dg_000000000000_guess"),
        bearer("nonsense"),
        {"Authorization": "Basic eDp5"},
        {"Authorization": "Bearer"},
    ):
        a = httpx.get(fast, headers=headers)
        b = httpx.post(routed, headers=headers, json=body)
        assert (a.status_code, a.json(), a.headers.get("www-authenticate")) == (
            b.status_code,
            b.json(),
            b.headers.get("www-authenticate"),
        ), headers
    single = httpx.get(fast, headers=bearer(key)).json()
    assert [single] == httpx.post(routed, headers=bearer(key), json=body).json()["results"]
    # what the shortcut does not take (too long an id) still gets FastAPI's validation
    assert (
        httpx.get(f"{live.url}/v1/accounts/{'x' * 129}/risk", headers=bearer(key)).status_code
        == 422
    )


def test_assign_and_note_are_history_and_audit(live: LiveApi, client: redis.Redis) -> None:
    seed(client)
    key_id, key = make_key(client, "analyst", "ana")
    url = live.url + "/v1/alerts/get_admin"
    body = httpx.post(url + "/assign", headers=bearer(key), json={"assignee": "bo"}).json()
    assert body["assignee"] == "bo" and body["status"] == "open"
    body = httpx.post(url + "/notes", headers=bearer(key), json={"note": "same ASN"}).json()
    assert [(h["action"], h["note"], h["actor"]) for h in body["history"]] == [
        ("assigned", "bo", f"ana#{key_id}"),
        ("note", "same ASN", f"ana#{key_id}"),
    ]
    audit = [json.loads(f[b"entry"])["action"] for f in stream_fields(client, schema.AUDIT_STREAM)]
    assert audit == ["alert.assign", "alert.note"]
