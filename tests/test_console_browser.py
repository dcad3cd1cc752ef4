"""The analyst console in a real browser: Debian's Chromium driven by Playwright.

Live uvicorn against a real Valkey. The worker's own call (``AlertWriter.write``) puts
a new alert in the store while the page is open; the test sees it arrive over the
SSE stream, opens it, confirms it with the keyboard alone, then checks through the
API and the feedback stream that the verdict landed. Screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import orjson
import pytest
import redis
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from distillguard.detectors.alerts import alert_id_for
from distillguard.records import (
    AccountRisk,
    Alert,
    Cluster,
    ClusterTimeline,
    Evidence,
    HistoryEntry,
    MemberRequests,
    Reason,
    dumps,
    iso,
)
from distillguard.store import schema
from distillguard.store.apikeys import new_key
from distillguard.store.feedback import read_labels
from distillguard.store.models import Role
from distillguard.store.writer import AlertWriter
from tests.conftest import flushed
from tests.helpers.live_api import LiveApi, live_api

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with live_api(Path(tmp_path_factory.mktemp("console"))) as api:
        yield api


@pytest.fixture
def client(live: LiveApi) -> Iterator[redis.Redis]:
    yield from flushed(live.redis_url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium)")
    with sync_playwright() as p:
        # a fresh temporary profile per launch: nothing from a previous run leaks in
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Problems:
    """Console errors and uncaught page exceptions, collected while a page runs."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type in ("error", "assert"):
            self.errors.append(f"console.{msg.type}: {msg.text} @ {msg.location}")


def make_key(client: redis.Redis, role: Role, name: str) -> str:
    """A key stored exactly as ``distillguard keys create`` stores it."""
    record, key = new_key(role, name)
    client.set(schema.api_key(record.key_id), dumps(record))
    client.sadd(schema.API_KEYS, record.key_id)
    return key


# ---- realistic data: several levels, a cluster with shared evidence -------------------

CLUSTER = "clu_7"
RING = [
    "acct_3f9c0a17e2",
    "acct_8b21d44c90",
    "acct_c07e5a1b3d",
    "acct_5d6e9f0a21",
    "acct_e41b7c2d08",
]
PARAMS = {
    "logprobs_rate": 0.97,
    "top_logprobs_mean": 19.4,
    "multi_completion_rate": 0.62,
    "temperature_zero_rate": 0.03,
    "large_max_tokens_rate": 0.91,
    "output_input_ratio": 11.8,
    "cot_elicitation_rate": 0.88,
}
INFRA = {
    "ip_change_rate": 0.41,
    "scripted_client_rate": 1.0,
    "rate_limited_rate": 0.07,
    "fast_retry_rate": 0.22,
}
PROMPTS = [
    "Solve the following problem. Think step by step and show every intermediate step "
    "of your reasoning before giving the final answer.\n\nProblem 4417: A tank fills at "
    "3 L/min and drains at 1.2 L/min ...",
    "You are an expert Rust engineer. Write a complete, idiomatic implementation of a "
    "lock-free MPSC queue, then explain each design decision in detail.",
    "Translate the passage into French, then explain each grammatical choice step by "
    "step: 'The committee postponed its decision until the audit was complete.'",
    "Think carefully and reason out loud. Question 9021: prove that the sum of the first "
    "n odd numbers is n^2.",
]
REASONS_CRITICAL = [
    Reason(signal="logprobs_rate", value=0.97, population_percentile=99.7),
    Reason(signal="requests_per_hour", value=1840.0, population_percentile=99.4),
    Reason(signal="cot_elicitation_rate", value=0.88, population_percentile=98.9),
    Reason(signal="template_repeat_rate", value=0.74, population_percentile=97.6),
    Reason(signal="interarrival_log_std", value=0.21, population_percentile=1.4),
    Reason(signal="duty_cycle", value=0.96, population_percentile=95.2),
]


def _features(rph: float, extra: dict[str, float]) -> dict[str, float]:
    return {
        "requests_per_hour": rph,
        "output_tokens_per_hour": rph * 1450.0,
        "requests_per_hour_6h": rph * 0.9,
        "duty_cycle": 0.96,
        **PARAMS,
        **INFRA,
        **extra,
    }


def _account_alert(
    account: str, risk: float, level: str, created: float, reasons: list[Reason], **kw: Any
) -> Alert:
    return Alert(
        alert_id=alert_id_for(account, created),
        subject_type="account",
        subject_id=account,
        risk=risk,
        level=level,  # type: ignore[arg-type]
        reasons=reasons,
        created_at=iso(created),
        updated_at=iso(created),
        first_event_ts=iso(created - 14 * 3600),
        last_event_ts=iso(created),
        history=[HistoryEntry(at=iso(created), actor="detector", action="opened")],
        **kw,
    )


def seed_feature_history(client: redis.Redis, account: str, now: float, peak: float) -> None:
    """Twelve hours of snapshots, as the writer stores them (newest first)."""
    for i in range(48):
        t = now - (47 - i) * 900
        ramp = min(1.0, i / 20)
        snap = _features(
            peak * (0.15 + 0.85 * ramp) * (1 + 0.06 * ((i * 7) % 5 - 2)),
            {"template_repeat_rate": 0.2 + 0.55 * ramp, "interarrival_log_std": 1.6 - 1.35 * ramp},
        )
        client.lpush(schema.features(account), orjson.dumps({"ts": iso(t), "features": snap}))


def seed(client: redis.Redis) -> dict[str, Alert]:
    """A believable queue: a coordinated ring (cluster alert + members) and loners."""
    now = time.time()
    evidence = [
        Evidence(
            kind="payment",
            value="card fp 5b1e…a09c (shared BIN 431940)",
            weight=1.2,
            accounts=RING[:4],
        ),
        Evidence(kind="net", value="203.0.113.0/24", weight=0.8, accounts=RING),
        Evidence(
            kind="template",
            value="'Solve the following problem. Think step by step…'",
            weight=0.8,
            accounts=RING[1:],
        ),
        Evidence(
            kind="sync",
            value="bursts within 2 s, 31 windows",
            weight=0.8,
            accounts=[RING[0], RING[2], RING[4]],
        ),
        Evidence(kind="user_agent", value="python-httpx/0.27.0", weight=0.15, accounts=RING),
    ]
    cluster = Cluster(
        cluster_id=CLUSTER,
        members=RING,
        risk=0.94,
        level="critical",
        evidence=evidence,
        first_alert_ts=iso(now - 3000),
        updated_at=iso(now - 60),
    )
    alerts = [
        Alert(
            alert_id=f"alert_{CLUSTER}",
            subject_type="cluster",
            subject_id=CLUSTER,
            risk=0.94,
            level="critical",
            created_at=iso(now - 3000),
            updated_at=iso(now - 60),
            reasons=[
                Reason(signal="cluster_size", value=5.0),
                Reason(signal="cluster_link_strength", value=0.83),
                Reason(signal="shared_payment", value=1.2),
                Reason(signal="shared_net", value=0.8),
                Reason(signal="shared_template", value=0.8),
                Reason(signal="member_risk", value=0.88),
            ],
            cluster_id=CLUSTER,
            members=RING,
            evidence=evidence,
            sample_prompts=PROMPTS[:2],
        ),
        _account_alert(
            RING[0],
            0.91,
            "critical",
            now - 2400,
            REASONS_CRITICAL,
            cluster_id=CLUSTER,
            org_id="org_51c2e0d9aa",
            evidence=evidence,
            features=_features(
                1840.0, {"template_repeat_rate": 0.74, "interarrival_log_std": 0.21}
            ),
            sample_prompts=PROMPTS,
        ),
        _account_alert(
            RING[1],
            0.86,
            "high",
            now - 2100,
            REASONS_CRITICAL[1:5],
            cluster_id=CLUSTER,
            org_id="org_51c2e0d9aa",
            sample_prompts=PROMPTS[1:],
        ),
        _account_alert(
            "acct_0d4a7718f3",
            0.78,
            "high",
            now - 5200,
            [
                Reason(signal="new_model_share", value=0.93, population_percentile=99.1),
                Reason(signal="output_input_ratio", value=14.2, population_percentile=98.2),
                Reason(signal="topic_breadth", value=0.81, population_percentile=96.0),
            ],
            org_id="org_9e07b1c344",
            sample_prompts=PROMPTS[2:],
        ),
        _account_alert(
            "acct_71be09d2c5",
            0.58,
            "medium",
            now - 900,
            [
                Reason(signal="requests_per_hour", value=620.0, population_percentile=97.8),
                Reason(signal="hour_flatness", value=0.93, population_percentile=94.0),
            ],
            org_id="org_2a6f3c1d87",
        ),
        _account_alert(
            "acct_a96c2e5b10",
            0.47,
            "medium",
            now - 7100,
            [Reason(signal="duplicate_prompt_rate", value=0.35, population_percentile=95.5)],
            org_id="org_d1e84a0b72",
        ),
    ]
    writer = AlertWriter(client)
    risks = [
        AccountRisk(
            account_id=a.subject_id,
            risk=a.risk,
            level=a.level,
            reasons=a.reasons,
            cluster_id=a.cluster_id,
        )
        for a in alerts
        if a.subject_type == "account"
    ]
    risks += [
        AccountRisk(
            account_id=m,
            risk=0.62,
            level="medium",
            cluster_id=CLUSTER,
            reasons=[Reason(signal="cluster_membership", value=0.94)],
        )
        for m in RING[2:]
    ]
    writer.write(risks, alerts, [cluster])
    seed_feature_history(client, RING[0], now, 1840.0)
    seed_feature_history(client, RING[1], now, 1210.0)
    return {a.alert_id: a for a in alerts}


def sign_in(page: Page, url: str, key: str) -> None:
    page.goto(f"{url}/console")
    page.fill("#key-input", key)
    page.keyboard.press("Enter")
    expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=TIMEOUT_MS)


def api_get(live: LiveApi, key: str, path: str) -> httpx.Response:
    return httpx.get(f"{live.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=5.0)


# ---- tests -----------------------------------------------------------------------------


def test_live_alert_open_and_confirm_by_keyboard(
    live: LiveApi, client: redis.Redis, browser: Browser
) -> None:
    seeded = seed(client)
    key = make_key(client, "analyst", "ana")
    picked = next(a for a in seeded.values() if a.subject_id == "acct_0d4a7718f3")
    httpx.post(
        f"{live.url}/v1/alerts/{picked.alert_id}/ack",
        json={"assignee": "maria"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=5.0,
    ).raise_for_status()
    page = browser.new_page(viewport=VIEWPORT)
    problems = Problems(page)
    navigations: list[str] = []
    page.on("framenavigated", lambda f: navigations.append(f.url) if f == page.main_frame else None)

    sign_in(page, live.url, key)
    rows = page.locator("#queue-body tr")
    expect(rows).to_have_count(len(seeded), timeout=TIMEOUT_MS)
    loaded = len(navigations)

    # the worker's call, while the page is open
    now = time.time()
    account = "acct_b7e2f90c44"
    fresh = _account_alert(
        account,
        0.96,
        "critical",
        now,
        REASONS_CRITICAL[:4],
        org_id="org_77a0c3e1f5",
        sample_prompts=PROMPTS[:3],
        features=_features(2210.0, {"template_repeat_rate": 0.81}),
    )
    AlertWriter(client).write(
        [AccountRisk(account_id=account, risk=0.96, level="critical", reasons=fresh.reasons)],
        [fresh],
        [],
    )
    row = page.locator(f'#queue-body tr[data-alert-id="{fresh.alert_id}"]')
    expect(row).to_have_count(1, timeout=TIMEOUT_MS)
    assert len(navigations) == loaded, "the page reloaded instead of updating live"
    expect(rows).to_have_count(len(seeded) + 1)
    # the detector sees more of the same account: the same alert, updated in place
    grown = msgspec.structs.replace(fresh, risk=0.98, updated_at=iso(time.time()))
    AlertWriter(client).write(
        [AccountRisk(account_id=account, risk=0.98, level="critical", reasons=fresh.reasons)],
        [grown],
        [],
    )
    expect(row.locator(".risk strong")).to_have_text("0.98", timeout=TIMEOUT_MS)
    expect(rows).to_have_count(len(seeded) + 1)
    # severity first, then newest: the new critical sorts above every other alert
    assert rows.first.get_attribute("data-alert-id") == fresh.alert_id
    levels = [r.get_attribute("data-level") for r in rows.all()]
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    assert levels == sorted(levels, key=lambda lv: rank[lv or "low"])
    ARTIFACTS.mkdir(exist_ok=True)
    table = page.locator(".table-card").bounding_box()
    assert table is not None
    page.screenshot(
        path=str(ARTIFACTS / "console-queue.png"),
        clip={
            "x": 0,
            "y": 0,
            "width": VIEWPORT["width"],
            "height": min(VIEWPORT["height"], table["y"] + table["height"] + 24),
        },
    )

    # keyboard alone: move to the new alert, open it
    for _ in range(len(seeded) + 2):
        if page.locator("#queue-body tr.selected").get_attribute("data-alert-id") == fresh.alert_id:
            break
        page.keyboard.press("k")
    expect(page.locator("#queue-body tr.selected")).to_have_attribute(
        "data-alert-id", fresh.alert_id
    )
    page.keyboard.press("Enter")
    view = page.locator(f'.alert-view[data-alert-id="{fresh.alert_id}"]')
    expect(view).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator(".reasons-chart rect.bar")).to_have_count(len(fresh.reasons))
    signals = page.locator(".reasons-chart .reason-row").evaluate_all(
        "rows => rows.map(r => r.dataset.signal)"
    )
    assert signals == [r.signal for r in fresh.reasons]
    expect(page.locator(".line-chart").first).to_be_visible()
    expect(page.locator(".prompts li")).to_have_count(3)
    page.screenshot(path=str(ARTIFACTS / "console-alert.png"), full_page=True)

    # confirm: c opens the note field with focus, Enter submits
    page.keyboard.press("c")
    note = page.locator("#verdict-note")
    expect(note).to_be_focused()
    page.keyboard.type("same template and payment as clu_7")
    page.keyboard.press("Enter")
    expect(view.locator(".meta .pill")).to_have_text("confirmed", timeout=TIMEOUT_MS)

    body = api_get(live, key, f"/v1/alerts/{fresh.alert_id}").json()
    assert body["status"] == "confirmed"
    assert body["history"][-1]["action"] == "confirmed"
    assert body["history"][-1]["note"] == "same template and payment as clu_7"
    labels, _ = read_labels(client)
    assert [(lb.account_id, lb.label, lb.alert_id) for lb in labels] == [
        (account, "distiller", fresh.alert_id)
    ]
    assert labels[0].analyst is not None and labels[0].analyst.startswith("ana#")

    # j: on to the alert that was below it; Esc: the "needs review" queue no longer lists it
    below = next(a for a in seeded.values() if a.subject_id == RING[0])
    page.keyboard.press("j")
    expect(page.locator(f'.alert-view[data-alert-id="{below.alert_id}"]')).to_be_visible(
        timeout=TIMEOUT_MS
    )
    page.keyboard.press("Escape")
    expect(rows).to_have_count(len(seeded), timeout=TIMEOUT_MS)
    expect(page.locator(f'#queue-body tr[data-alert-id="{fresh.alert_id}"]')).to_have_count(0)
    assert problems.errors == []
    page.close()


def test_dismiss_needs_a_note_and_suppress_needs_admin(
    live: LiveApi, client: redis.Redis, browser: Browser
) -> None:
    seeded = seed(client)
    key = make_key(client, "analyst", "ana")
    page = browser.new_page(viewport=VIEWPORT)
    problems = Problems(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{live.url}/console")
    page.screenshot(path=str(ARTIFACTS / "console-signin.png"))
    sign_in(page, live.url, key)
    target = next(a for a in seeded.values() if a.subject_id == "acct_71be09d2c5")
    # j/k, arrows and Enter: walk down to the medium alert
    for _ in range(len(seeded) + 1):
        selected = page.locator("#queue-body tr.selected").get_attribute("data-alert-id")
        if selected == target.alert_id:
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    view = page.locator(f'.alert-view[data-alert-id="{target.alert_id}"]')
    expect(view).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator(".reasons-chart rect.bar")).to_have_count(len(target.reasons))

    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "console-help.png"))
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()

    page.keyboard.press("a")
    expect(view.locator(".meta .pill")).to_have_text("acknowledged", timeout=TIMEOUT_MS)

    page.keyboard.press("d")
    expect(page.locator("#verdict-note")).to_be_focused()
    page.keyboard.press("Enter")  # no note: refused in the page, nothing sent
    expect(page.locator(".verdict .error")).to_contain_text("needs a note")
    assert api_get(live, key, f"/v1/alerts/{target.alert_id}").json()["status"] == "acknowledged"
    page.keyboard.type("internal load test, ticket OPS-2231")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-dismiss.png"))
    page.keyboard.press("Enter")
    expect(view.locator(".meta .pill")).to_have_text("dismissed", timeout=TIMEOUT_MS)
    labels, _ = read_labels(client)
    assert [(lb.account_id, lb.label) for lb in labels] == [("acct_71be09d2c5", "benign")]

    # suppress is admin-only: an analyst key gets a clear message, and no rule is made
    page.keyboard.press("s")
    expect(page.locator("#suppress-reason")).to_be_focused()
    page.keyboard.type("known partner")
    page.keyboard.press("Enter")
    expect(page.locator(".verdict-suppress .error")).to_contain_text("needs an admin key")
    assert client.hlen(schema.SUPPRESSIONS) == 0
    page.keyboard.press("Escape")
    expect(page.locator("#action-panel")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(page.locator("#queue-body")).to_be_visible()
    # the browser reports the refused call itself (a 403 resource load); nothing else
    assert [e for e in problems.errors if "status of 403" not in e] == []
    assert len(problems.errors) == 1
    page.close()


def test_cluster_view_draws_members_and_shared_evidence(
    live: LiveApi, client: redis.Redis, browser: Browser
) -> None:
    seeded = seed(client)
    leader = next(a for a in seeded.values() if a.subject_id == RING[0])
    key = make_key(client, "analyst", "ana")
    page = browser.new_page(viewport=VIEWPORT)
    problems = Problems(page)
    sign_in(page, live.url, key)
    # filter the queue to the cluster, then open the ring leader's alert and jump with g
    page.fill("#f-cluster", CLUSTER)
    page.keyboard.press("Enter")
    rows = page.locator("#queue-body tr")
    expect(rows).to_have_count(3, timeout=TIMEOUT_MS)  # cluster alert + two member alerts
    page.locator(f'#queue-body tr[data-alert-id="{leader.alert_id}"]').click()
    expect(page.locator(f'.alert-view[data-alert-id="{leader.alert_id}"]')).to_be_visible(
        timeout=TIMEOUT_MS
    )
    # twelve hours of snapshots drawn as lines, the shared evidence listed as infrastructure
    expect(page.locator(".line-chart path.line").first).to_be_visible()
    # payment, /24 and user agent: infrastructure it holds (the template is RING[1:] only)
    expect(page.locator(".kv.evidence tr")).to_have_count(3)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-alert-leader.png"), full_page=True)
    page.keyboard.press("g")
    graph = page.locator(".cluster-graph")
    expect(graph).to_be_visible(timeout=TIMEOUT_MS)
    expect(graph.locator(".acc-node")).to_have_count(len(RING))
    expect(graph.locator(".ev-node")).to_have_count(5)
    # one edge per (evidence, holder) pair
    expect(graph.locator(".edge")).to_have_count(4 + 5 + 4 + 3 + 5)
    expect(page.locator(".members-table tbody tr")).to_have_count(len(RING))
    page.screenshot(path=str(ARTIFACTS / "console-cluster.png"), full_page=True)
    page.keyboard.press("Escape")
    expect(page.locator("#cluster-body tr")).to_have_count(1, timeout=TIMEOUT_MS)
    assert problems.errors == []
    page.close()


# A fleet of three firing in the same seconds (after staggered starts), one member on its
# own rhythm, and three members the timeline does not draw.
FLEET = "clu_9"
T0 = 1_795_000_000  # 2026-11-18 11:06:40 UTC
FLEET_TIMES = {
    "acct_fleet_b": [T0 + 20, T0 + 600, T0 + 1200, T0 + 1800],
    "acct_fleet_a": [T0, T0 + 600, T0 + 1200, T0 + 1800, T0 + 2400],
    "acct_loner": [T0 + 900, T0 + 2950],
    "acct_fleet_c": [T0 + 45, T0 + 600, T0 + 1200, T0 + 1800],
}
SYNCED = [T0 + 600, T0 + 1200, T0 + 1800]


def seed_fleet(client: redis.Redis) -> None:
    members = [*sorted(FLEET_TIMES), "acct_quiet_1", "acct_quiet_2", "acct_quiet_3"]
    cluster = Cluster(
        cluster_id=FLEET,
        members=members,
        risk=0.93,
        level="critical",
        evidence=[Evidence(kind="sync", value="bursts within 1 s", weight=0.9, accounts=members)],
        updated_at=iso(T0 + 3000),
    )
    rows = [
        MemberRequests(account_id=a, times=t, requests=len(t) + 10 * (a == "acct_fleet_a"))
        for a, t in sorted(FLEET_TIMES.items(), key=lambda at: at[1][0])
    ]
    timeline = ClusterTimeline(
        cluster_id=FLEET, members=rows, hidden=3, updated_at=cluster.updated_at
    )
    AlertWriter(client).write([], [], [cluster], timelines=[timeline])


def test_cluster_timeline_draws_one_row_per_member_on_one_axis(
    live: LiveApi, client: redis.Redis, browser: Browser
) -> None:
    seed_fleet(client)
    key = make_key(client, "analyst", "ana")
    body = api_get(live, key, f"/v1/clusters/{FLEET}/timeline").json()
    assert [m["account_id"] for m in body["members"]][:2] == ["acct_fleet_a", "acct_fleet_b"]
    assert api_get(live, key, "/v1/clusters/clu_nope/timeline").status_code == 404
    page = browser.new_page(viewport=VIEWPORT)
    problems = Problems(page)
    sign_in(page, live.url, key)
    page.evaluate(f"location.hash = '#/clusters/{FLEET}'")
    chart = page.locator(".member-timeline")
    expect(chart).to_be_visible(timeout=TIMEOUT_MS)
    rows = chart.locator(".tl-row")
    # rows in order of first request; each row as many ticks as requests kept
    order = ["acct_fleet_a", "acct_fleet_b", "acct_fleet_c", "acct_loner"]
    expect(rows).to_have_count(len(order))
    assert [r.get_attribute("data-account") for r in rows.all()] == order
    for account in order:
        ticks = chart.locator(f'.tl-row[data-account="{account}"] .tl-tick')
        expect(ticks).to_have_count(len(FLEET_TIMES[account]))
    label = rows.first.get_attribute("aria-label") or ""
    assert "acct_fleet_a: last 5 of 15 requests" in label
    assert "2026-11-18 11:06:40 to 2026-11-18 11:46:40 UTC" in label
    # the same second is the same column, on screen, in every row that sent it
    for t in SYNCED:
        xs = [
            box["x"]
            for account in order[:3]
            if (
                box := chart.locator(
                    f'.tl-row[data-account="{account}"] .tl-tick[data-t="{t}"]'
                ).bounding_box()
            )
            is not None
        ]
        assert len(xs) == 3 and max(xs) - min(xs) < 1.0, (t, xs)
    # and different seconds far apart are different columns
    a_ticks = [
        b["x"]
        for b in (
            t.bounding_box() for t in chart.locator(".tl-row").first.locator(".tl-tick").all()
        )
        if b
    ]
    assert a_ticks == sorted(a_ticks) and min(b - a for a, b in itertools.pairwise(a_ticks)) > 20
    expect(chart.locator(".tl-axis text").first).to_have_text(re.compile(r"^\d\d:\d\d$"))
    expect(page.locator(".timeline-hidden")).to_have_text(
        "3 more members not drawn: the 4 most active are shown."
    )
    expect(page.locator(".kv.evidence tr")).to_have_count(1)  # beside the evidence table
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-cluster-fleet.png"), full_page=True)
    beside = page.locator(".grid-2", has=page.locator(".timeline-card"))
    beside.screenshot(path=str(ARTIFACTS / "console-cluster-timeline.png"))  # docs/img
    assert problems.errors == []
    page.close()


def test_bad_key_is_refused_and_nothing_is_fetched_from_elsewhere(
    live: LiveApi, browser: Browser
) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    problems = Problems(page)
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(httpx.URL(r.url).host))
    page.goto(f"{live.url}/console")
    page.fill("#key-input", "dg_000000000000_not-a-real-secret")
    page.keyboard.press("Enter")
    expect(page.locator("#signin-error")).to_contain_text("not valid")
    expect(page.locator("#view")).to_be_hidden()
    assert hosts == {"127.0.0.1"}
    assert [e for e in problems.errors if "status of 401" not in e] == []
    page.close()


def test_event_stream_reader_survives_split_chunks(live: LiveApi, browser: Browser) -> None:
    """The hand-written text/event-stream parser, fed the awkward splits a network makes:
    CR LF torn between chunks, a JSON line cut in two, a UTF-8 character cut in half."""
    page = browser.new_page()
    problems = Problems(page)
    page.goto(f"{live.url}/console")
    messages = page.evaluate("""async () => {
        const { readEventStream } = await import("/console/api.js");
        const enc = new TextEncoder();
        const e = enc.encode("é");
        const parts = [
            enc.encode("event: created\\r"),
            enc.encode('\\nid: a1\\ndata: {"x"'),
            enc.encode(':1}\\r\\n\\r\\n: ready\\nretry: 2000\\n\\n'),
            enc.encode("data: l1\\ndata: caf"), e.slice(0, 1), e.slice(1), enc.encode("\\n\\n"),
            enc.encode("data: unterminated"),
        ];
        const body = new ReadableStream({
            start(c) { parts.forEach((p) => c.enqueue(p)); c.close(); },
        });
        const out = [];
        await readEventStream(body, new AbortController().signal, (m) => out.push(m));
        return out;
    }""")
    assert messages == [
        {"event": "created", "id": "a1", "data": '{"x":1}'},
        {"event": "message", "comment": "ready", "retry": 2000},
        {"event": "message", "data": "l1\ncafé"},
    ]
    assert problems.errors == []
    page.close()


def test_console_assets_are_local_listed_and_keyless(live: LiveApi) -> None:
    page = httpx.get(f"{live.url}/console", follow_redirects=True, timeout=5.0)
    assert page.status_code == 200 and page.url.path == "/console/"
    assert "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "http" not in page.text.replace("http-equiv", "")  # no absolute URL to anywhere
    js = httpx.get(f"{live.url}/console/app.js", timeout=5.0)
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    for name in ("api.py", "..%2Fconsole.py", "index.htm", "static"):
        assert httpx.get(f"{live.url}/console/{name}", timeout=5.0).status_code == 404, name
    signals = httpx.get(f"{live.url}/console/signals.json", timeout=5.0).json()
    assert {"logprobs_rate", "interarrival_log_std"} <= {s["name"] for s in signals}
    paths = httpx.get(f"{live.url}/openapi.json", timeout=5.0).json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]
