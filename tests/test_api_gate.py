"""The API's gate, live: authentication before the body, the body limit, 422s that do
not echo, keyless requests throttled per address, and only sane dates accepted.

Raw sockets where the point is what the server does *before* the body arrives: a
request whose body is announced but never sent is answered only by a server that did
not wait for it.

Each test speaks for its own client address (``X-Forwarded-For``, which uvicorn takes
from a loopback peer), so the per-address buckets of one test do not leak into another.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import APIRouter

from distillguard.api.deps import Admin
from distillguard.api.gate import check_gated
from distillguard.store import schema
from tests.conftest import flushed
from tests.helpers.live_api import LiveApi, live_api
from tests.test_api import bearer, make_key, seed

LIMIT = 65_536
GATE_CONFIG = f"""
api:
  max_body_bytes: {LIMIT}
  rate_limits:
    unauthenticated: {{rate_per_s: 0.01, burst: 5}}
"""
_addresses = itertools.count(1)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    workdir = Path(tmp_path_factory.mktemp("gate"))
    (workdir / "gate.yaml").write_text(GATE_CONFIG)
    with live_api(workdir, env={"DISTILLGUARD_CONFIG": str(workdir / "gate.yaml")}) as api:
        yield api


@pytest.fixture
def client(live: LiveApi) -> Iterator[redis.Redis]:
    yield from flushed(live.redis_url)


@pytest.fixture
def address() -> str:
    """A client address of this test's own."""
    n = next(_addresses)
    return f"198.51.{n // 256}.{n % 256}"


def as_client(address: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"X-Forwarded-For": address, **(headers or {})}


def raw(
    url: str, head: list[str], body: bytes = b"", timeout_s: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and headers) and ``body`` as they are, read one
    response. Raises TimeoutError if the server waits for more than was sent."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    assert port is not None
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(("\r\n".join([*head, "", ""])).encode("latin-1") + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65_536)
            if not chunk:
                raise ConnectionError(f"closed before a response: {data!r}")
            data += chunk
        head_bytes, rest = data.split(b"\r\n\r\n", 1)
        status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        while len(rest) < int(headers.get("content-length", "0")):
            chunk = sock.recv(65_536)
            if not chunk:
                break
            rest += chunk
    return int(status_line.split()[1]), headers, rest


def post_head(path: str, address: str, *extra: str) -> list[str]:
    return [
        f"POST {path} HTTP/1.1",
        "Host: test",
        "Content-Type: application/json",
        f"X-Forwarded-For: {address}",
        *extra,
    ]


# --- 1. authentication before the body ---------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/risk:batch", "/v1/suppressions", "/v1/alerts/a/review", "/v1/keys"]
)
def test_malformed_body_without_key_is_401_not_422(
    live: LiveApi, client: redis.Redis, address: str, path: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer dg_000000000000_guess"}):
        resp = httpx.post(
            live.url + path,
            content=b'{"account_ids": [',  # not JSON
            headers=as_client(address, {"Content-Type": "application/json", **headers}),
        )
        assert resp.status_code == 401, resp.text
        assert resp.headers["www-authenticate"] == "Bearer"
    # a body that is JSON but wrong for the route: still who-are-you first
    resp = httpx.post(live.url + path, json={"nonsense": 1}, headers=as_client(address))
    assert resp.status_code == 401


def test_wrong_role_is_403_before_the_body_is_validated(
    live: LiveApi, client: redis.Redis, address: str
) -> None:
    _, service = make_key(client, "service")
    resp = httpx.post(
        live.url + "/v1/suppressions",
        content=b"{not json",
        headers=as_client(address, {**bearer(service), "Content-Type": "application/json"}),
    )
    assert resp.status_code == 403


def test_gate_answers_without_waiting_for_the_body(
    live: LiveApi, client: redis.Redis, address: str
) -> None:
    """The body is announced, never sent: only a server that does not read it answers."""
    _, service = make_key(client, "service")
    status, _, body = raw(
        live.url, post_head("/v1/risk:batch", address, "Content-Length: 52428800")
    )
    assert status == 401 and json.loads(body) == {"detail": "missing API key"}
    status, _, _ = raw(
        live.url,
        post_head(
            "/v1/suppressions",
            address,
            f"Authorization: Bearer {service}",
            "Content-Length: 100",
        ),
    )
    assert status == 403
    status, _, _ = raw(
        live.url,
        post_head("/v1/alerts/a/notes", address, "Transfer-Encoding: chunked"),
        b'4\r\n{"no\r\n',  # the first chunk only
    )
    assert status == 401


def test_health_checks_and_console_stay_open(live: LiveApi, client: redis.Redis) -> None:
    assert httpx.get(live.url + "/healthz").status_code == 200
    assert httpx.get(live.url + "/readyz").status_code == 200
    assert httpx.get(live.url + "/console/").status_code == 200
    assert httpx.get(live.url + "/openapi.json").status_code == 200


def test_a_keyed_route_outside_the_gate_stops_the_start() -> None:
    router = APIRouter()  # no route_class=GatedRoute

    @router.get("/x")
    async def x(_: Admin) -> None:
        return None

    with pytest.raises(RuntimeError, match="GatedRoute"):
        check_gated([router])


# --- 2. the body limit -----------------------------------------------------------


def test_content_length_over_the_limit_is_413_at_once(
    live: LiveApi, client: redis.Redis, address: str
) -> None:
    _, admin = make_key(client, "admin")
    auth = f"Authorization: Bearer {admin}"
    for head in (
        post_head("/v1/suppressions", address, auth, "Content-Length: 52428800"),
        post_head("/v1/risk:batch", address, auth, f"Content-Length: {LIMIT + 1}"),
        # routes without a body too, the risk fast path included
        ["GET /v1/accounts/a/risk HTTP/1.1", "Host: t", auth, "Content-Length: 52428800"],
        ["GET /v1/clusters HTTP/1.1", "Host: t", auth, "Content-Length: 52428800"],
    ):
        start = time.monotonic()
        status, headers, body = raw(live.url, head)
        assert status == 413, (head, body)
        assert json.loads(body) == {
            "detail": f"request body larger than {LIMIT} bytes (api.max_body_bytes)"
        }
        assert headers["connection"] == "close"
        assert time.monotonic() - start < 2.0


def test_chunked_body_is_cut_when_it_crosses_the_limit(
    live: LiveApi, client: redis.Redis, address: str
) -> None:
    _, admin = make_key(client, "admin")
    head = post_head(
        "/v1/risk:batch", address, f"Authorization: Bearer {admin}", "Transfer-Encoding: chunked"
    )
    piece = b"x" * 8192
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(LIMIT // 8192))
    chunks += b"1\r\nx\r\n"  # one byte over; the terminating chunk never comes
    status, headers, body = raw(live.url, head, chunks)
    assert status == 413 and "max_body_bytes" in json.loads(body)["detail"]
    assert headers["connection"] == "close"


def test_bodies_within_the_limit_pass_chunked_or_not(
    live: LiveApi, client: redis.Redis, address: str
) -> None:
    _, service = make_key(client, "service")
    ids = [f"acct_{i:05d}" for i in range(4000)]  # ~60 KB of JSON, just under the limit
    payload = json.dumps({"account_ids": ids[:1000]}).encode()
    url = live.url + "/v1/risk:batch"
    auth = as_client(address, {**bearer(service), "Content-Type": "application/json"})
    assert httpx.post(url, content=payload, headers=auth).status_code == 200
    padded = payload[:-1] + b" " * (LIMIT - len(payload)) + b"}"
    assert len(padded) == LIMIT
    assert httpx.post(url, content=padded, headers=auth).status_code == 200
    halves = iter([padded[: LIMIT // 2], padded[LIMIT // 2 :]])  # chunked transfer
    resp = httpx.post(url, content=halves, headers=auth)
    assert resp.status_code == 200 and len(resp.json()["results"]) == 1000
    assert httpx.post(url, content=padded + b" ", headers=auth).status_code == 413


# --- 3. a 422 names the field, never the value -----------------------------------


def test_422_keeps_locations_and_messages_but_not_the_input(
    live: LiveApi, client: redis.Redis, address: str
) -> None:
    seed(client)
    _, admin = make_key(client, "admin")
    auth = as_client(address, bearer(admin))
    secret = "s3cr3t" * 8000  # ~48 KB
    cases = [
        ("POST", "/v1/alerts/get_admin/notes", {"note": secret}, ["body", "note"]),
        ("POST", "/v1/suppressions", {"scope": secret, "value": "a", "reason": "r"}, None),
        ("POST", "/v1/risk:batch", {"account_ids": [secret]}, ["body", "account_ids", 0]),
        ("GET", f"/v1/alerts?limit={secret[:2000]}", None, ["query", "limit"]),
    ]
    for method, path, body, loc in cases:
        resp = httpx.request(method, live.url + path, json=body, headers=auth)
        assert resp.status_code == 422, (path, resp.text[:300])
        assert len(resp.content) < 2000 and "s3cr3ts3cr3t" not in resp.text, path
        errors = resp.json()["detail"]
        assert all(set(e) <= {"type", "loc", "msg", "ctx"} and e["msg"] for e in errors)
        if loc is not None:
            assert errors[0]["loc"] == loc, errors
    # a field name is the client's too: named, but clipped
    resp = httpx.post(
        live.url + "/v1/keys", json={"role": "admin", "name": "n", secret: 1}, headers=auth
    )
    [error] = resp.json()["detail"]
    assert error["type"] == "extra_forbidden" and error["loc"][0] == "body"
    assert len(error["loc"][1]) <= 120 and error["loc"][1].endswith("…")
    # nor the document, when it is not JSON at all
    resp = httpx.post(
        live.url + "/v1/suppressions",
        content=b'{"reason": "' + b"leak" * 10_000,  # never closed
        headers={**auth, "Content-Type": "application/json"},
    )
    assert resp.status_code == 422 and "leakleak" not in resp.text
    assert [e["type"] for e in resp.json()["detail"]] == ["json_invalid"]
    # the constraint that failed is still said
    resp = httpx.post(live.url + "/v1/alerts/get_admin/notes", json={"note": secret}, headers=auth)
    assert resp.json()["detail"][0]["ctx"] == {"max_length": 10000}


# --- 4. requests without a valid key, per client address ---------------------------


def test_keyless_requests_are_throttled_per_address(
    live: LiveApi, client: redis.Redis, address: str
) -> None:
    """Test config: 5 at once, then one per 100 s, per address."""
    _, analyst = make_key(client, "analyst")
    url = live.url + "/v1/clusters"
    # valid keys are never charged to their address
    for _ in range(10):
        assert httpx.get(url, headers=as_client(address, bearer(analyst))).status_code == 200
    failures = [
        {},
        bearer("nonsense"),
        bearer("dg_000000000000_guess"),
        {"Authorization": "Basic eDp5"},
        bearer("dg_000000000001_guess"),
    ]
    for headers in failures:
        assert httpx.get(url, headers=as_client(address, headers)).status_code == 401
    limited = httpx.get(url, headers=as_client(address, bearer("dg_000000000002_guess")))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 90
    assert limited.json() == {"detail": "too many requests without a valid API key"}
    # the same bucket on every keyed route, the risk fast path and bodies included
    fast = httpx.get(live.url + "/v1/accounts/a/risk", headers=as_client(address))
    assert fast.status_code == 429
    batch = httpx.post(live.url + "/v1/risk:batch", content=b"{", headers=as_client(address))
    assert batch.status_code == 429
    # a valid key keeps its own bucket, even from that address
    assert httpx.get(url, headers=as_client(address, bearer(analyst))).status_code == 200
    # and another address has its own
    other = httpx.get(url, headers=as_client(address.replace("198.51", "203.0")))
    assert other.status_code == 401


def test_an_ipv6_slash_64_is_one_address(live: LiveApi, client: redis.Redis, address: str) -> None:
    n = address.split(".")[-1]
    for i in range(5):
        mine = as_client(f"2001:db8:{n}:1::{i + 1}")
        assert httpx.get(live.url + "/v1/clusters", headers=mine).status_code == 401
    same_net = as_client(f"2001:db8:{n}:1:ffff::9")
    assert httpx.get(live.url + "/v1/clusters", headers=same_net).status_code == 429
    next_net = as_client(f"2001:db8:{n}:2::1")
    assert httpx.get(live.url + "/v1/clusters", headers=next_net).status_code == 401


# --- 5. dates in a sane window ------------------------------------------------------


def _z(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_suppression_expiry_must_be_sane_and_ahead(
    live: LiveApi, client: redis.Redis, address: str
) -> None:
    _, admin = make_key(client, "admin")
    auth = as_client(address, bearer(admin))
    url = live.url + "/v1/suppressions"
    now = datetime.now(UTC)
    rule = {"scope": "account", "value": "acct_1", "reason": "partner"}
    refused = {
        "0001-01-01T00:00:00Z": "2000 to 2100",
        "0001-01-01T00:00:00+01:00": "2000 to 2100",  # overflows when made UTC
        "9999-12-31T23:59:59-12:00": "2000 to 2100",
        "1999-12-31T23:59:59Z": "2000 to 2100",
        "2101-01-01T00:00:00Z": "2000 to 2100",
        (now - timedelta(minutes=1)).isoformat(): "future",
        (now + timedelta(days=6 * 365)).isoformat(): "5 years",
        "2030-01-01T00:00:00": "timezone",  # no offset
    }
    for expires_at, why in refused.items():
        resp = httpx.post(url, json={**rule, "expires_at": expires_at}, headers=auth)
        assert resp.status_code == 422, (expires_at, resp.text)
        [error] = resp.json()["detail"]
        assert error["loc"] == ["body", "expires_at"] and why in error["msg"], error
    assert client.hlen(schema.SUPPRESSIONS) == 0

    # any offset names an instant; it is stored in UTC
    soon = (now + timedelta(days=30)).replace(microsecond=0)
    india = timezone(timedelta(hours=5, minutes=30))
    resp = httpx.post(
        url, json={**rule, "expires_at": soon.astimezone(india).isoformat()}, headers=auth
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["expires_at"] == _z(soon) and created["active"] is True

    one = f"{url}/{created['suppression_id']}"
    for expires_at in ("0001-01-01T00:00:00Z", (now - timedelta(days=1)).isoformat()):
        resp = httpx.patch(one, json={"expires_at": expires_at}, headers=auth)
        assert resp.status_code == 422, resp.text
    later = soon + timedelta(days=1)
    pacific = timezone(timedelta(hours=-8))
    resp = httpx.patch(
        one, json={"expires_at": later.astimezone(pacific).isoformat()}, headers=auth
    )
    assert resp.status_code == 200 and resp.json()["expires_at"] == _z(later), resp.text


def test_since_filter_must_be_sane(live: LiveApi, client: redis.Redis, address: str) -> None:
    seed(client)
    _, analyst = make_key(client, "analyst")
    auth = as_client(address, bearer(analyst))
    url = live.url + "/v1/alerts"
    for since in ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-01-01T00:00:00Z"):
        resp = httpx.get(url, params={"since": since}, headers=auth)
        assert resp.status_code == 422, (since, resp.text)
        [error] = resp.json()["detail"]
        assert error["loc"] == ["query", "since"] and "2000 to 2100" in error["msg"]
    everything = httpx.get(url, params={"since": "2000-01-01T00:00:00Z"}, headers=auth)
    assert everything.status_code == 200 and len(everything.json()["items"]) == 12
    # the window's edges are dates, not instants in some zone: +02:00 on 1 January 2000
    # is still 1999 in UTC
    early = httpx.get(url, params={"since": "2000-01-01T01:00:00+02:00"}, headers=auth)
    assert early.status_code == 422
