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


def test_ts_is_a_float_whatever_the_wire_form() -> None:
    for ts in ("2026-11-18T09:00:00Z", "2026-11-18T10:00:00+01:00", 1_795_000_000, BASE_TS):
        event = decoder.decode(orjson.dumps(valid_event(1, "a") | {"ts": ts}))
        assert type(event.ts) is float


ID_FIELDS = ("event_id", "account_id", "api_key_id", "org_id", "payment_fingerprint")
CONTROLS = {
    "\x00": "NUL",
    "\x1b": "ESC (C0)",
    "\x7f": "DEL",
    "\x85": "NEL (C1)",
    "\u200b": "zero-width space",
    "\u200f": "right-to-left mark",
    "\u202e": "right-to-left override",
    "\u2066": "left-to-right isolate",
    "\u2069": "pop directional isolate",
    "\ufeff": "zero-width no-break space (BOM)",
}


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize("char", list(CONTROLS), ids=list(CONTROLS.values()))
def test_control_characters_in_identifiers_are_refused(field: str, char: str) -> None:
    raw = orjson.dumps(valid_event(1, "acct") | {field: f"ab{char}cd"})
    with pytest.raises(InvalidEvent) as info:
        decoder.decode(raw)
    reason = info.value.reason
    assert f"`{field}`" in reason and f"U+{ord(char):04X}" in reason and "index 2" in reason


@pytest.mark.parametrize("field", ID_FIELDS)
def test_non_ascii_identifiers_without_controls_pass(field: str) -> None:
    # Fails the isprintable fast path (no-break space, accents) but holds no control.
    value = "Zürich\u00a0Labs-東京"
    assert decoder.decode(orjson.dumps(valid_event(1, "acct") | {field: value}))


def test_control_characters_in_prompts_are_not_refused() -> None:
    # Only identifiers are checked: prompts legitimately hold any text.
    raw = orjson.dumps(valid_event(1, "a") | {"prompt": "a\u202eb\x00c\u200b"})
    assert decoder.decode(raw).prompt == "a\u202eb\x00c\u200b"


def test_a_timestamp_ahead_of_the_wall_clock_is_refused() -> None:
    clock = [BASE_TS]
    dec = EventDecoder(Limits(max_future_s=3600), now=lambda: clock[0])
    just_in = orjson.dumps(valid_event(1, "a", ts=BASE_TS + 3599))
    too_far = orjson.dumps(valid_event(2, "a", ts=BASE_TS + 3601))
    assert dec.decode(just_in).ts == BASE_TS + 3599
    with pytest.raises(InvalidEvent, match=r"3601 s ahead of the wall clock.*3600 s"):
        dec.decode(too_far)
    clock[0] += 10  # the injected clock is read per event
    assert dec.decode(too_far).ts == BASE_TS + 3601


def test_an_rfc3339_timestamp_ahead_of_the_clock_is_refused_too() -> None:
    dec = EventDecoder(Limits(max_future_s=60), now=lambda: BASE_TS)
    raw = orjson.dumps(valid_event(1, "a") | {"ts": "2026-11-18T12:00:00Z"})  # BASE_TS + 3200 s
    with pytest.raises(InvalidEvent, match="2026-11-18T12:00:00Z is 3200 s ahead"):
        dec.decode(raw)


def test_old_events_are_bounded_by_the_skew_limit_not_the_future_limit() -> None:
    dec = EventDecoder(Limits(max_clock_skew_days=1, max_future_s=1), now=lambda: BASE_TS)
    assert dec.decode(orjson.dumps(valid_event(1, "a", ts=BASE_TS - 3600)))
    with pytest.raises(InvalidEvent, match="more than 1 days in the past"):
        dec.decode(orjson.dumps(valid_event(1, "a", ts=BASE_TS - 2 * 86_400)))


def test_limits_from_settings_carry_the_future_bound() -> None:
    from distillguard.settings import Validation

    limits = Limits.from_settings(Validation(max_future_s=5, max_tokens=7))
    assert limits.max_future_s == 5 and limits.max_tokens == 7
    assert Limits.from_settings(Validation()) == Limits()
