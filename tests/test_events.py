"""The event contract: what is accepted, what is refused, and why."""

from __future__ import annotations

import orjson
import pytest

from distillguard.events import EventDecoder, InvalidEvent, Limits, RequestEvent, encode
from tests.helpers.synthetic import BASE_TS, MALFORMED_KINDS, malformed_event, valid_event

decoder = EventDecoder(now=lambda: BASE_TS)


def test_valid_event_decodes_with_epoch_ts_and_optional_fields() -> None:
    event = decoder.decode(orjson.dumps(valid_event(3, "acct")))
    assert isinstance(event, RequestEvent)
    assert event.account_id == "acct"
    assert event.ts == pytest.approx(BASE_TS + 0.03)
    assert event.temperature == 0.0
    assert event.n is None and event.logprobs is None


def test_rfc3339_with_offset_becomes_epoch_seconds() -> None:
    with_offset = valid_event(1, "a") | {"ts": "2026-11-18T10:00:00+01:00"}
    in_utc = valid_event(1, "a") | {"ts": "2026-11-18T09:00:00Z"}
    epoch = valid_event(1, "a") | {"ts": 1_795_000_000}  # an integer is epoch seconds too
    assert decoder.decode(orjson.dumps(with_offset)).ts == decoder.decode(orjson.dumps(in_utc)).ts
    assert isinstance(decoder.decode(orjson.dumps(epoch)).ts, float)


def test_unknown_fields_are_ignored() -> None:
    raw = valid_event(1, "a") | {"future_field": {"nested": [1, 2]}}
    assert decoder.decode(orjson.dumps(raw)).event_id == "ev-1"


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_every_malformed_kind_is_refused_with_a_reason(kind: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        decoder.decode(malformed_event(1, kind, "acct"))
    assert len(info.value.reason) > 10


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("status", 42, ">= 100"),
        ("n", 0, ">= 1"),
        ("logprobs", "yes", "bool"),
        ("country", "France", "regex"),
        ("prompt_fingerprint", "xyz", "regex"),
        ("input_tokens", True, "int"),
        ("input_tokens", 1.5, "int"),
        ("event_id", "x" * 129, "length"),
        ("input_tokens", 10**9, "token count"),
    ],
)
def test_field_rules(field: str, value: object, fragment: str) -> None:
    raw = valid_event(1, "a") | {field: value}
    with pytest.raises(InvalidEvent, match=fragment):
        decoder.decode(orjson.dumps(raw))


def test_prompt_limit_applies_below_the_message_limit() -> None:
    tight = EventDecoder(Limits(max_prompt_chars=10), now=lambda: BASE_TS)
    with pytest.raises(InvalidEvent, match="prompt"):
        tight.decode(orjson.dumps(valid_event(1, "a")))


def test_encode_round_trips() -> None:
    event = decoder.decode(orjson.dumps(valid_event(9, "z")))
    assert decoder.decode(encode(event)) == event
