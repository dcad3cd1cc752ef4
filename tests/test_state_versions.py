"""Checkpoints (``detectors/state.py``): lossless at any point, readable across releases.

- A pipeline restored from ``snapshot_shared`` + ``snapshot_accounts`` at any point of
  the ``small`` scenario continues exactly as the original.
- The committed checkpoints restore: ``fixtures/state/v1`` (this format) and
  ``fixtures/state/v0`` (the positional format before it, migrated), showing what the
  pipeline that wrote them reported (``facts.json``).
- Fields a newer release added are ignored, fields an older one lacked take their
  defaults; a newer format, a corrupt or a foreign blob raises ValueError and changes
  nothing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest

from distillguard.detectors.account_pipeline import AccountPipeline
from distillguard.detectors.features.account import AccountState
from distillguard.detectors.linkage.graph import Holder
from distillguard.detectors.pipeline import BatchOutput, Pipeline, build_pipeline
from distillguard.detectors.state import (
    FORMAT_VERSION,
    AccountStateData,
    HolderState,
    TrackedState,
    decode_account,
    decode_shared,
)
from distillguard.detectors.tracked import Tracked
from distillguard.evaluation.replay import decoder_for
from distillguard.events import RequestEvent
from distillguard.settings import get_settings
from distillguard.sim.engine import generate
from distillguard.sim.scenario import load_scenario
from tests.state_fixture import facts, fixture_pipeline

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "state"
#: events of the ``small`` scenario replayed (its first hours: every archetype active)
SLICE = 30_000
#: where the split replays checkpoint and restart: odd places, none on a cadence
CUTS = (1, 977, 6_113, 15_551, 23_042, 29_999)


# -- lossless ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_events() -> list[RequestEvent]:
    decoder = decoder_for(get_settings())
    events: list[RequestEvent] = []
    for _, lines in generate(load_scenario("small")).lines():
        events.extend(decoder.decode(line) for line in lines)
        if len(events) >= SLICE:
            break
    return events[:SLICE]


def replay(events: list[RequestEvent], mode: str) -> tuple[Pipeline, list[BatchOutput]]:
    """Drive the shipped pipeline as an edge does, checkpointing (after a drain) at each cut.

    ``mode``: ``straight`` goes on; ``restart`` goes on in a fresh pipeline restored from
    the checkpoint (a restart, a partition moving); ``rollback`` processes a few hundred
    more events, then rolls the same pipeline back to the checkpoint the way the worker
    does after a failed commit, and re-reads from there.
    """
    settings = get_settings()
    pipe = build_pipeline(settings)
    drained: list[BatchOutput] = []
    for i, event in enumerate(events):
        if i in CUTS:
            drained.append(pipe.drain())
            shared = pipe.snapshot_shared()
            accounts = pipe.snapshot_accounts(pipe.accounts())
            if mode == "restart":
                pipe = build_pipeline(settings)
            elif mode == "rollback":
                for lost in events[i : i + 400]:
                    pipe.process(lost)
                pipe.drain()  # the worker discards these: they are produced again
                pipe.forget(pipe.accounts())
            if mode != "straight":
                pipe.restore(shared)
                pipe.restore_accounts(accounts)
        if pipe.process(event):
            drained.append(pipe.drain())
    drained.append(pipe.drain())
    return pipe, drained


@pytest.fixture(scope="module")
def straight(small_events: list[RequestEvent]) -> tuple[Pipeline, list[BatchOutput]]:
    return replay(small_events, "straight")


@pytest.mark.parametrize("mode", ["restart", "rollback"])
def test_a_restored_pipeline_continues_exactly_as_the_original(
    small_events: list[RequestEvent], straight: tuple[Pipeline, list[BatchOutput]], mode: str
) -> None:
    """Same risks, alerts, clusters and drained batches, and the same state at the end.

    Floats are compared to 12 significant digits, not bit for bit, because of one known
    leak that is not the checkpoint's: ``LinkageStage._mean_link`` sums link weights in
    the iteration order of a set of account ids, which a set rebuilt from a checkpoint
    (or the hash seed of another process) may change, moving a cluster's risk by an ulp.
    """
    original, original_out = straight
    restored, restored_out = replay(small_events, mode)
    accounts = sorted(original.accounts())
    assert sorted(restored.accounts()) == accounts and len(accounts) > 100
    assert_close(
        msgspec.to_builtins([restored.risk(a) for a in accounts]),
        msgspec.to_builtins([original.risk(a) for a in accounts]),
    )
    alerts = [(a.subject_id, a.risk) for out in original_out for a in out.alerts]
    assert alerts
    assert [(a.subject_id, a.risk) for out in restored_out for a in out.alerts] == alerts
    linkage_a, linkage_b = original.linkage, restored.linkage  # type: ignore[attr-defined]
    assert {a: linkage_b.cluster_of(a) for a in accounts} == {
        a: linkage_a.cluster_of(a) for a in accounts
    }
    # every drained batch: counts, risks, alerts, chart points, clusters
    assert_close(msgspec.to_builtins(restored_out), msgspec.to_builtins(original_out))
    assert_close(
        decode_shared(restored.snapshot_shared()), decode_shared(original.snapshot_shared())
    )
    assert restored.snapshot_accounts(accounts) == original.snapshot_accounts(accounts)


# -- committed checkpoints ----------------------------------------------------------------


def fixture(version: str) -> tuple[bytes, dict[str, bytes], dict[str, Any]]:
    d = FIXTURES / version
    accounts = msgspec.msgpack.decode((d / "accounts.msgpack").read_bytes(), type=dict[str, bytes])
    return (d / "shared.msgpack").read_bytes(), accounts, json.loads((d / "facts.json").read_text())


def restored(shared: bytes, accounts: dict[str, bytes]) -> Pipeline:
    pipe = fixture_pipeline()
    pipe.restore(shared)
    pipe.restore_accounts(accounts)
    return pipe


def assert_reports(pipe: Pipeline, recorded: dict[str, Any]) -> None:
    """The restored pipeline reports what the one that wrote the checkpoint did."""
    got = facts(pipe)
    assert got["accounts"] == recorded["accounts"] == 55
    for account, risk in recorded["risks"].items():
        assert got["risks"][account] == pytest.approx(risk, abs=1e-6), account
    assert got["risks"]["bulk"] == pytest.approx(0.9987, abs=1e-6)
    assert got["levels"] == recorded["levels"]
    assert got["clusters"] == recorded["clusters"]
    assert {a for a, c in got["clusters"].items() if c == got["clusters"]["hydra0"]} == {
        f"hydra{i}" for i in range(12)
    }
    assert got["clock_now"] == recorded["clock_now"]
    assert got["linkage_accounts"] == recorded["linkage_accounts"]


@pytest.mark.parametrize("version", ["v1", "v0"])
def test_committed_checkpoints_restore(version: str) -> None:
    shared, accounts, recorded = fixture(version)
    pipe = restored(shared, accounts)
    assert_reports(pipe, recorded)
    # and it goes on: a new member of the hydra's card and proxy pool joins its cluster
    t = recorded["clock_now"]
    for i in range(8):
        pipe.process(
            RequestEvent(
                event_id=f"late{i}", ts=t + 60.0 * i, account_id="hydra-new", model="m",
                input_tokens=20, output_tokens=200, status=200, payment_fingerprint="card-h",
                ip=f"45.77.{12 + i % 2}.{200 + i}", asn=20473,
                user_agent="python-requests/2.31.0",
            )
        )  # fmt: skip
    pipe.drain()
    assert pipe.risk("bulk").risk == pytest.approx(0.9987, abs=1e-6)
    assert pipe.linkage.cluster_of("hydra0") == recorded["clusters"]["hydra0"]  # type: ignore[attr-defined]


def test_a_checkpoint_from_before_the_sampler_gives_it_the_holders_counts_and_values() -> None:
    """The committed checkpoints predate ``sampling.py``: each holder's request count
    and last attribute values become its account's sampler entry, so the prompts and
    attributes read next are the ones the old holder would have read."""
    shared, accounts, _ = fixture("v1")
    old = decode_shared(shared).linkage
    assert old is not None and old.sampler is None
    raw = {h.id: (h.events, h.raw) for h in old.graph.holders}
    assert raw and all(len(r) == 10 for _, r in raw.values())
    pipe = restored(shared, accounts)
    sampler = pipe.linkage._sampler  # type: ignore[attr-defined]
    for account, (events, r) in raw.items():
        entry = sampler.entry(account)
        assert entry is not None and entry[0] == events
        assert list(entry[3:8]) == [r[0], r[2], r[4], r[6], r[8]]
    assert all(not h.raw for h in pipe.linkage._graph.holders.values())  # type: ignore[attr-defined]


def test_version_0_migrates_to_what_version_1_wrote() -> None:
    """Both fixtures were written after the same stream: the migration loses nothing.

    (Up to float summation order: a cluster's mean link sums over a set of strings, whose
    order Python's hash seed sets per process.)
    """
    shared0, accounts0, _ = fixture("v0")
    shared1, accounts1, _ = fixture("v1")
    new, old = decode_shared(shared1), decode_shared(shared0)
    assert old.published == {} and new.published  # v0 did not keep the drained memberships
    old.published = new.published
    assert_close(old, new)
    assert accounts0.keys() == accounts1.keys()
    for account in accounts1:
        assert Tracked.from_state(_account(accounts0[account])).to_state() == _account(
            accounts1[account]
        )


def _account(blob: bytes) -> TrackedState:
    return decode_account(blob)


def assert_close(a: Any, b: Any, path: str = "$") -> None:
    """Equal, floats to 12 significant digits, Structs field by field."""
    if isinstance(a, msgspec.Struct) and isinstance(b, msgspec.Struct):
        assert type(a) is type(b), path
        for f in msgspec.structs.fields(a):
            assert_close(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12) or a == b, path
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


# -- evolution -----------------------------------------------------------------------------


def test_newer_fields_are_ignored_and_missing_ones_take_their_defaults() -> None:
    shared, accounts, recorded = fixture("v1")
    doc = msgspec.msgpack.decode(shared)
    doc["added_by_v1_9"] = {"anything": [1, 2]}
    doc["account"]["anomaly"]["drift_detector"] = 0.5
    doc["linkage"]["graph"]["holders"][0]["reputation"] = "new"
    del doc["published"]  # optional: the memberships last drained
    del doc["account"]["events"]  # the eviction sweep's counter starts again
    blobs = dict(accounts)
    for account in ("bulk", "hydra3"):
        acct = msgspec.msgpack.decode(blobs[account])
        acct["tracked"]["state"]["ew_new_signal"] = 0.25
        acct["tracked"]["tier"] = "enterprise"
        acct["tracked"].pop("samples", None)
        acct["tracked"]["state"].pop("repeat_hits", None)
        blobs[account] = msgspec.msgpack.encode(acct)
    pipe = restored(msgspec.msgpack.encode(doc), blobs)
    assert_reports(pipe, recorded)
    account = pipe.account  # type: ignore[attr-defined]
    bulk = account._tracked["bulk"]
    assert bulk.state.repeat_hits == 0.0 and bulk.samples is None and account._events == 0


def test_a_newer_format_is_refused_and_changes_nothing() -> None:
    shared, accounts, _ = fixture("v1")
    pipe = restored(shared, accounts)
    before = pipe.snapshot_shared(), pipe.snapshot_accounts(pipe.accounts())
    doc = msgspec.msgpack.decode(shared)
    doc["version"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match="newer release"):
        pipe.restore(msgspec.msgpack.encode(doc))
    acct = msgspec.msgpack.decode(accounts["bulk"])
    acct["version"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match="newer release"):
        pipe.restore_accounts({"bulk": msgspec.msgpack.encode(acct)})
    assert (pipe.snapshot_shared(), pipe.snapshot_accounts(pipe.accounts())) == before


@pytest.mark.parametrize(
    "bad",
    ["truncated", "account blob as shared", "wrong type", "no parts", "v0 truncated"],
)
def test_corrupt_or_foreign_shared_checkpoints_change_nothing(bad: str) -> None:
    shared, accounts, _ = fixture("v1")
    pipe = restored(shared, accounts)
    before = pipe.snapshot_shared()
    doc = msgspec.msgpack.decode(shared)
    if bad == "truncated":
        blob = shared[: len(shared) // 3]
    elif bad == "account blob as shared":
        blob = accounts["bulk"]
    elif bad == "wrong type":
        doc["linkage"]["graph"]["holders"][2]["keys"] = {"p:card-h": "yesterday"}
        blob = msgspec.msgpack.encode(doc)
    elif bad == "no parts":
        blob = msgspec.msgpack.encode({"kind": "shared", "version": FORMAT_VERSION})
    else:
        blob = (FIXTURES / "v0" / "shared.msgpack").read_bytes()[:-40]
    with pytest.raises(ValueError) as raised:
        pipe.restore(blob)
    assert "checkpoint" in str(raised.value)
    assert pipe.snapshot_shared() == before


def test_corrupt_account_checkpoints_load_none() -> None:
    shared, accounts, _ = fixture("v1")
    pipe = fixture_pipeline()
    pipe.restore(shared)
    broken = dict(accounts)
    broken["hydra3"] = shared  # a shared checkpoint where an account's belongs
    with pytest.raises(ValueError, match=r"'hydra3'.*not a distillguard account checkpoint"):
        pipe.restore_accounts(broken)
    assert pipe.accounts() == []


def test_an_account_pipeline_checkpoint_restores_into_a_linked_pipeline() -> None:
    """Switching ``detectors.pipeline`` keeps the models: the shared parts are typed."""
    shared, accounts, recorded = fixture("v1")
    alone = AccountPipeline(get_settings().detectors)
    alone.restore(shared)  # the linkage part is ignored
    alone.restore_accounts(accounts)
    assert alone.risk("bulk").risk == pytest.approx(recorded["risks"]["bulk"], abs=1e-6)
    linked = fixture_pipeline()
    linked.restore(alone.snapshot_shared())
    linked.restore_accounts(alone.snapshot_accounts(alone.accounts()))
    assert linked.risk("bulk") == alone.risk("bulk")
    assert linked.linkage.cluster_of("hydra0") is None  # type: ignore[attr-defined]


def test_the_shared_checkpoint_is_one_typed_msgpack_map() -> None:
    shared, _, _ = fixture("v1")
    doc = msgspec.msgpack.decode(shared)
    assert doc["kind"] == "shared" and doc["version"] == FORMAT_VERSION
    assert {"clock", "account", "linkage"} <= doc.keys()
    assert not any(isinstance(v, bytes) for v in _leaves(doc))  # nothing encoded inside
    assert decode_shared(shared).linkage is not None


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_every_slot_is_in_the_checkpoint() -> None:
    """A slot added to a class without a state field would silently not be restored."""
    saved = {f.name for f in msgspec.structs.fields(AccountStateData)}
    assert {s.lstrip("_") for s in AccountState.__slots__} == saved
    # the count of cadence keys is recounted from the keys on restore
    holder = set(Holder.__slots__) - {"gap_keys"}
    assert holder == {f.name for f in msgspec.structs.fields(HolderState)}
    # the ring's cursor is saved as the order of ``request_times`` (oldest first, cursor 0)
    tracked = set(Tracked.__slots__) - {"request_times_next"}
    assert tracked == {f.name for f in msgspec.structs.fields(TrackedState)}
