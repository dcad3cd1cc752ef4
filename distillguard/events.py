"""The request-log event (CONTRACT §1): typed, strictly validated, decoded fast.

msgspec decodes straight into a typed struct and validates types and numeric bounds
in C: measured faster than ``orjson.loads`` produces an *unvalidated* dict (``make
bench`` prints both), so validation costs nothing extra there. Checks msgspec cannot
express (timestamp parsing and range, control characters in identifiers, IP syntax,
size limits) run once per event in :meth:`EventDecoder.decode`, so every decoded event
is valid and ``ts`` is always epoch seconds (a ``float``): no code after the decoder
parses a timestamp.
"""

from __future__ import annotations

import re
import socket
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import msgspec

if TYPE_CHECKING:
    from distillguard.settings import Validation

_ID = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
_Str = Annotated[str, msgspec.Meta(max_length=1024)]
_DAY = 86_400.0


class RequestEvent(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """One LLM API request as logged at the edge.

    ``ts`` is accepted on the wire as RFC 3339 with an offset or as epoch seconds, and
    holds epoch seconds (a ``float``) in every event :class:`EventDecoder` returns.
    Type checkers are told ``float``, the post-decoding contract code downstream relies
    on; msgspec is given the wire form (``float | str``) so that parsing stays one C
    decode plus one normalisation in :meth:`EventDecoder.decode` (a second wire struct
    would cost a copy per event). Unknown fields are ignored.
    """

    event_id: _ID
    if TYPE_CHECKING:
        ts: float
    else:
        ts: float | str  # wire form; EventDecoder.decode replaces a str with epoch seconds
    account_id: _ID
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    input_tokens: _NonNegInt
    output_tokens: _NonNegInt
    status: Annotated[int, msgspec.Meta(ge=100, le=599)]
    api_key_id: _Str | None = None
    org_id: _Str | None = None
    ip: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    asn: Annotated[int, msgspec.Meta(ge=0, le=4_294_967_295)] | None = None
    country: Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")] | None = None
    user_agent: _Str | None = None
    payment_fingerprint: _Str | None = None
    endpoint: _Str | None = None
    prompt: str | None = None
    system_prompt: str | None = None
    prompt_fingerprint: Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]{16}$")] | None = None
    max_tokens: _NonNegInt | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=1024)] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=1024)] | None = None
    tool_count: Annotated[int, msgspec.Meta(ge=0, le=100_000)] | None = None
    stream: bool | None = None
    latency_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds beyond types: what makes a well-typed event absurd."""

    max_prompt_chars: int = 200_000
    max_message_bytes: int = 1_048_576
    max_tokens: int = 10_000_000
    #: how far in the past (days) an event may be stamped
    max_clock_skew_days: float = 3650.0
    #: how far ahead of the wall clock (seconds) an event may be stamped: a clock set
    #: wrong upstream would otherwise age every other account's evidence
    max_future_s: float = 3600.0

    @classmethod
    def from_settings(cls, validation: Validation) -> Limits:
        """The limits the ``validation`` settings section names (worker, replay)."""
        return cls(
            max_prompt_chars=validation.max_prompt_chars,
            max_message_bytes=validation.max_message_bytes,
            max_tokens=validation.max_tokens,
            max_clock_skew_days=validation.max_clock_skew_days,
            max_future_s=validation.max_future_s,
        )


class InvalidEvent(ValueError):
    """A message that is not a valid event; ``reason`` is for humans (and the DLQ)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventDecoder:
    """Bytes in, a valid :class:`RequestEvent` out, or :class:`InvalidEvent` with a reason.

    One decoder per consumer: it holds a reusable msgspec decoder and the limits.
    ``now`` is the wall clock (epoch seconds) the future and skew limits are measured
    against; tests and replays inject their own.

    Examples
    --------
    >>> dec = EventDecoder(now=lambda: 1_790_000_000.0)
    >>> ev = dec.decode(b'{"event_id":"e1","ts":"2026-09-21T10:00:00Z","account_id":"a",'
    ...                 b'"model":"m","input_tokens":3,"output_tokens":5,"status":200}')
    >>> ev.ts
    1789984800.0
    >>> dec.decode(b'{"event_id":"e1"}')
    Traceback (most recent call last):
    ...
    distillguard.events.InvalidEvent: Object missing required field `ts`
    """

    def __init__(self, limits: Limits | None = None, now: Callable[[], float] = time.time) -> None:
        self.limits = limits or Limits()
        self._decoder = msgspec.json.Decoder(RequestEvent)
        self._now = now

    def decode(self, raw: bytes) -> RequestEvent:
        """The valid event in ``raw``, or :class:`InvalidEvent` saying what is wrong."""
        limits = self.limits
        if len(raw) > limits.max_message_bytes:
            raise InvalidEvent(
                f"message of {len(raw)} bytes exceeds the {limits.max_message_bytes}-byte limit"
            )
        try:
            event = self._decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise InvalidEvent(str(exc)) from None
        except msgspec.DecodeError as exc:
            raise InvalidEvent(f"not valid JSON: {exc}") from None
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"not valid UTF-8: {exc.reason} at byte {exc.start}") from None
        ts = event.ts if isinstance(event.ts, float) else _parse_rfc3339(event.ts)
        ahead = ts - self._now()
        if ahead > limits.max_future_s:
            raise InvalidEvent(
                f"`ts` {_iso(ts)} is {ahead:.0f} s ahead of the wall clock"
                f" (at most {limits.max_future_s:g} s allowed)"
            )
        if -ahead > limits.max_clock_skew_days * _DAY:
            raise InvalidEvent(
                f"`ts` {_iso(ts)} is more than {limits.max_clock_skew_days:g} days in the past"
            )
        # Identifiers reach analysts' screens, logs and Redis keys: a bidi override or a
        # zero-width space there makes two ids look alike or one look like another.
        # Every refused character is non-printable to str.isprintable (one C call), so
        # only text that fails it is searched for what exactly it holds.
        text = event.event_id
        if not text.isprintable():
            _refuse_controls("event_id", text)
        text = event.account_id
        if not text.isprintable():
            _refuse_controls("account_id", text)
        optional = event.api_key_id
        if optional is not None and not optional.isprintable():
            _refuse_controls("api_key_id", optional)
        optional = event.org_id
        if optional is not None and not optional.isprintable():
            _refuse_controls("org_id", optional)
        optional = event.payment_fingerprint
        if optional is not None and not optional.isprintable():
            _refuse_controls("payment_fingerprint", optional)
        if event.input_tokens > limits.max_tokens or event.output_tokens > limits.max_tokens:
            raise InvalidEvent(f"token count above {limits.max_tokens}")
        if event.prompt is not None and len(event.prompt) > limits.max_prompt_chars:
            raise InvalidEvent(
                f"`prompt` of {len(event.prompt)} chars exceeds {limits.max_prompt_chars}"
            )
        if event.ip is not None and not _is_ip(event.ip):
            raise InvalidEvent(f"`ip` {event.ip[:64]!r} is not an IP address")
        if ts != event.ts:
            # Normalised once here, so downstream code never parses a timestamp.
            msgspec.structs.force_setattr(event, "ts", ts)
        return event


#: C0, DEL and C1 controls, zero-width space/joiners and LRM/RLM (U+200B-200F), bidi
#: embeddings/overrides (U+202A-202E) and isolates (U+2066-2069), and the BOM / zero-width
#: no-break space (U+FEFF).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _refuse_controls(field: str, text: str) -> None:
    """Raise :class:`InvalidEvent` if ``text`` holds a control character (see ``_CONTROL``).

    Called only for text ``str.isprintable`` refuses, which includes every character
    refused here but also some that are fine in an id (a no-break space, a character
    newer than Python's Unicode tables): those pass after one regex search.
    """
    found = _CONTROL.search(text)
    if found is None:
        return
    char = found.group()
    name = unicodedata.name(char, "control character")
    raise InvalidEvent(
        f"`{field}` contains U+{ord(char):04X} ({name}) at index {found.start()}:"
        " control, bidi and zero-width characters are not allowed in identifiers"
    )


def _iso(ts: float) -> str:
    """``ts`` as RFC 3339 UTC for a reason an analyst reads; the number if out of range."""
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{ts:.0f}"


def _is_ip(text: str) -> bool:
    # inet_pton is C; ipaddress.ip_address was the single largest cost of decoding.
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except (OSError, ValueError):
        return False
    return True


def _parse_rfc3339(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEvent(f"`ts` {text[:40]!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise InvalidEvent(f"`ts` {text[:40]!r} has no UTC offset")
    return parsed.timestamp()


def encode(event: RequestEvent) -> bytes:
    """Compact JSON for an event (simulator, tests): omits unset optional fields."""
    return _ENCODER.encode(event)


_ENCODER = msgspec.json.Encoder()
