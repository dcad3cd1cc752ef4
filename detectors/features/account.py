"""Per-account behaviour state over event time, and the signals it yields.

One :class:`AccountState` per tracked account, updated once per event. Memory is
bounded by construction: decayed counters instead of event lists, exponentially
weighted shares instead of windows, a 24-bin hour profile and a handful of recent
prompt skeletons. Every update is a few dozen float operations; the prompt text is
analysed only when the caller says so (text sampling, see ``AccountFeatures``).

Time is event time (``ts``). An event older than the account's latest one (late
delivery) is counted but does not rewind the clock.
"""

from __future__ import annotations

import math
import operator
import zlib
from array import array
from typing import Any

import msgspec

from distillguard.detectors.features import text as prompt_text
from distillguard.detectors.state import AccountStateData, as_state, le_array, le_bytes
from distillguard.events import RequestEvent

#: Half-lives of the decayed request counters, in seconds.
SHORT_HALF_LIFE = 900.0
LONG_HALF_LIFE = 6 * 3600.0
#: Event-weighted shares forget with this factor per event (~64-event memory).
SHARE_DECAY = 1.0 - 1.0 / 64.0
#: Text-derived shares forget per analysed prompt (~32 analysed prompts of memory).
TEXT_DECAY = 1.0 - 1.0 / 32.0
#: Rate windows never shorter than these (see ``features``).
SHORT_FLOOR_S = 600.0
LONG_FLOOR_S = 3600.0
#: Duty cycle starts at this prior, worth this many hours of observation.
DUTY_PRIOR = 0.4
DUTY_PRIOR_H = 6.0
NO_THINK_GAP_S = 2.0
FAST_RETRY_GAP_S = 5.0
LARGE_MAX_TOKENS = 4096
RECENT = 4  # recent prompt skeletons remembered for template/duplicate detection
SEEN_BYTES = 256  # long-horizon content memory: 2,048 bits
SEEN_MASK = SEEN_BYTES * 8 - 1
SEEN_CAPACITY = 300
CONTENT_CHARS = 256
#: Upstream SimHash fingerprints (of whole prompts) within this Hamming distance of a
#: recent one count as one template. Measured on the corpora: one template with
#: different slot contents sits a median 12-17 bits from the closest of the last four
#: prompts, unrelated prompts 24-26 bits (random 64-bit hashes: 32).
FINGERPRINT_RADIUS = 18
#: Daily counts are weighted by this per day (~a week of memory) for the quota signal,
#: which needs this many closed days and this mean volume (a few requests a day vary
#: by chance far more than a quota: the CV would say nothing).
DAY_DECAY = 1.0 - 1.0 / 7.0
QUOTA_MIN_DAYS = 3
QUOTA_MIN_DAILY = 50.0
#: zero-count days folded in for a long gap (beyond this the weights are ~0 anyway)
MAX_IDLE_DAYS = 14
#: a benchmark run's pace: requests per active minute (people and IDEs stay far below)
RUN_PACE = 20.0
#: prompts hashed for repeats after the account's first day before the novelty of its
#: runs is read (~250 prompts): by then the repeat share is mostly about later days, so
#: a second run of the same benchmark shows its repeats
NOVELTY_MIN_HASHED = 64
_DAY_MASK = (1 << 24) - 1
_LN2 = math.log(2.0)
_SCRIPTED = (
    "python-requests",
    "curl/",
    "aiohttp",
    "httpx",
    "go-http-client",
    "okhttp",
    "wget",
    "node-fetch",
    "axios",
    "java-http-client",
    "libwww-perl",
    "scrapy",
    "urllib",
)
_HOUR_LOG_NORM = math.log(24.0)
_TOPIC_LOG_NORM = math.log(len(prompt_text.TOPICS))
_CAPABILITY = tuple(
    i for i, t in enumerate(prompt_text.TOPICS) if t in prompt_text.CAPABILITY_TOPICS
)


def is_scripted_client(user_agent: str) -> bool:
    """Whether a user agent is a bare HTTP library rather than an SDK or a product.

    >>> is_scripted_client("python-requests/2.31.0"), is_scripted_client("anthropic-python/0.40")
    (True, False)
    """
    ua = user_agent.lower()
    return any(s in ua for s in _SCRIPTED)


class AccountState:
    """Decayed counters and shares for one account; ``features()`` names them.

    Examples
    --------
    >>> from distillguard.events import RequestEvent
    >>> state = AccountState()
    >>> for i in range(30):
    ...     state.update(RequestEvent(
    ...         event_id=str(i), ts=1_790_000_000.0 + 2.0 * i, account_id="a", model="m",
    ...         input_tokens=50, output_tokens=900, status=200, logprobs=True,
    ...         prompt=f"Task {i}: solve x + {i} = 10. Show your work step by step."))
    >>> f = state.features(1_790_000_060.0)
    >>> f["cot_elicitation_rate"], f["logprobs_rate"], round(f["output_input_ratio"])
    (1.0, 1.0, 18)
    >>> round(f["template_repeat_rate"], 2), round(f["interarrival_log_std"], 3)
    (0.98, 0.0)
    """

    __slots__ = (
        "_hour_total",
        "active_days",
        "analysed",
        "day",
        "day_count",
        "days_done",
        "days_s1",
        "days_s2",
        "days_w",
        "days_w2",
        "dup",
        "ew_count",
        "ew_fast_gap",
        "ew_gap",
        "ew_gap2",
        "ew_gap_n",
        "ew_input",
        "ew_ip_change",
        "ew_large_max",
        "ew_logprobs",
        "ew_multi_n",
        "ew_new_model",
        "ew_output",
        "ew_rate_limited",
        "ew_retry_fast",
        "ew_retry_n",
        "ew_scripted",
        "ew_temp0",
        "ew_tools",
        "ew_top_logprobs",
        "first_ts",
        "hashed_later",
        "hour_mask",
        "hours",
        "last_hour",
        "last_ip",
        "last_minute",
        "last_status_429",
        "last_ts",
        "last_ua",
        "last_ua_scripted",
        "n",
        "n_hours",
        "n_minutes",
        "out_long",
        "rate_long",
        "rate_short",
        "recent",
        "repeat_count",
        "repeat_hits",
        "repeat_inserted",
        "seen",
        "text_cot",
        "text_count",
        "text_template",
        "topics",
    )

    def __init__(self) -> None:
        self.n = 0
        self.first_ts = 0.0
        self.last_ts = 0.0
        self.rate_short = 0.0
        self.rate_long = 0.0
        self.out_long = 0.0
        # event-weighted shares: numerators over ew_count
        self.ew_count = 0.0
        self.ew_logprobs = 0.0
        self.ew_top_logprobs = 0.0
        self.ew_multi_n = 0.0
        self.ew_temp0 = 0.0
        self.ew_large_max = 0.0
        self.ew_tools = 0.0
        self.ew_rate_limited = 0.0
        self.ew_scripted = 0.0
        self.ew_ip_change = 0.0
        self.ew_new_model = 0.0
        self.ew_input = 0.0
        self.ew_output = 0.0
        # gaps: over ew_gap_n (the first event has no gap)
        self.ew_gap_n = 0.0
        self.ew_gap = 0.0
        self.ew_gap2 = 0.0
        self.ew_fast_gap = 0.0
        # 429 retries: over ew_retry_n (requests that follow a 429)
        self.ew_retry_n = 0.0
        self.ew_retry_fast = 0.0
        # text-derived shares: over text_count (analysed prompts)
        self.analysed = 0
        self.text_count = 0.0
        self.text_cot = 0.0
        self.text_template = 0.0
        self.dup = 0.0
        self.topics = array("f", bytes(4 * len(prompt_text.TOPICS)))
        self.hours = array("f", bytes(4 * 24))
        self._hour_total = 0.0
        self.last_hour = -1
        self.n_hours = 0
        self.last_minute = -1
        self.n_minutes = 0
        # recent skeletons: [heads..., tails..., contents...]
        self.recent = array("Q", bytes(8 * 3 * RECENT))
        # long memory of content (a Bloom filter of a quarter of the prompts), for
        # benchmark reruns that repeat hundreds of prompts hours apart
        self.seen = bytearray(SEEN_BYTES)
        self.repeat_inserted = 0
        self.repeat_count = 0.0
        self.repeat_hits = 0.0
        self.last_ip = ""
        self.last_ua = ""
        self.last_ua_scripted = False
        self.last_status_429 = False
        # regime: the last 24 clock hours as bits, and per-UTC-day counts
        self.hour_mask = 0
        self.day = -1
        self.day_count = 0
        self.days_w = 0.0
        self.days_w2 = 0.0
        self.days_s1 = 0.0
        self.days_s2 = 0.0
        self.days_done = 0
        self.active_days = 0
        self.hashed_later = 0

    # -- learning ---------------------------------------------------------------------

    def update(
        self,
        event: RequestEvent,
        *,
        ts: float | None = None,
        analyse_text: bool = True,
        new_model: bool = False,
    ) -> None:
        """Fold one event in; ``analyse_text=False`` skips the (costlier) prompt analysis.

        ``ts`` is the event's time in epoch seconds (default ``float(event.ts)``).
        """
        if ts is None:
            ts = float(event.ts)
        if self.n == 0:
            self.first_ts = self.last_ts = ts
            gap = -1.0
        else:
            gap = ts - self.last_ts
            if gap > 0.0:
                self.rate_short *= math.exp2(-gap / SHORT_HALF_LIFE)
                decay = math.exp2(-gap / LONG_HALF_LIFE)
                self.rate_long *= decay
                self.out_long *= decay
                self.last_ts = ts
            else:
                gap = 0.0
        self.n += 1
        self.rate_short += 1.0
        self.rate_long += 1.0
        self.out_long += event.output_tokens

        b = SHARE_DECAY
        self.ew_count = self.ew_count * b + 1.0
        self.ew_input = self.ew_input * b + event.input_tokens
        self.ew_output = self.ew_output * b + event.output_tokens * (event.n or 1)
        self.ew_logprobs *= b
        self.ew_top_logprobs *= b
        if event.logprobs or event.top_logprobs:
            self.ew_logprobs += 1.0
            self.ew_top_logprobs += event.top_logprobs or 0
        self.ew_multi_n *= b
        if event.n is not None and event.n > 1:
            self.ew_multi_n += 1.0
        self.ew_temp0 *= b
        if event.temperature == 0.0:
            self.ew_temp0 += 1.0
        self.ew_large_max *= b
        if event.max_tokens is not None and event.max_tokens >= LARGE_MAX_TOKENS:
            self.ew_large_max += 1.0
        self.ew_tools *= b
        if event.tool_count:
            self.ew_tools += 1.0
        self.ew_new_model *= b
        if new_model:
            self.ew_new_model += 1.0
        self.ew_rate_limited *= b
        if event.status == 429:
            self.ew_rate_limited += 1.0

        ua = event.user_agent
        if ua is not None and ua != self.last_ua:
            self.last_ua = ua
            self.last_ua_scripted = is_scripted_client(ua)
        self.ew_scripted *= b
        if ua is not None and self.last_ua_scripted:
            self.ew_scripted += 1.0
        ip = event.ip
        self.ew_ip_change *= b
        if ip is not None:
            if self.last_ip and ip != self.last_ip:
                self.ew_ip_change += 1.0
            self.last_ip = ip

        if gap >= 0.0:
            lg = math.log(gap + 0.001)  # Poisson arrivals: std ~1.28 at any rate
            self.ew_gap_n = self.ew_gap_n * b + 1.0
            self.ew_gap = self.ew_gap * b + lg
            self.ew_gap2 = self.ew_gap2 * b + lg * lg
            self.ew_fast_gap *= b
            if gap < NO_THINK_GAP_S:
                self.ew_fast_gap += 1.0
            if self.last_status_429:
                self.ew_retry_n = self.ew_retry_n * b + 1.0
                self.ew_retry_fast *= b
                if gap < FAST_RETRY_GAP_S:
                    self.ew_retry_fast += 1.0
        self.last_status_429 = event.status == 429

        if ts >= self.last_ts:
            minute_index = int(ts // 60.0)
            if minute_index != self.last_minute:
                self.last_minute = minute_index
                self.n_minutes += 1
                hour = minute_index // 60
                if hour != self.last_hour:
                    shift = hour - self.last_hour
                    mask = self.hour_mask
                    self.hour_mask = (
                        ((mask << shift) | 1) & _DAY_MASK
                        if self.last_hour >= 0 and shift < 24
                        else 1
                    )
                    self.last_hour = hour
                    self.n_hours += 1
            day = minute_index // 1440
            if day == self.day:
                self.day_count += 1
            else:
                if self.day >= 0:
                    self._close_days(day)
                self.day = day
                self.day_count = 1
        hour_index = int(ts // 3600.0)
        self.hours[hour_index % 24] += 1.0
        self._hour_total += 1.0
        if self._hour_total >= 4096.0:  # halve the profile: bounded, and it forgets slowly
            for h in range(24):
                self.hours[h] *= 0.5
            self._hour_total *= 0.5

        prompt = event.prompt
        if prompt:
            self._learn_content(prompt)
        if analyse_text:
            if prompt is not None:
                self._learn_prompt(prompt)
            elif event.prompt_fingerprint is not None:
                self._learn_fingerprint(event.prompt_fingerprint)

    def _close_days(self, day: int) -> None:
        """Fold the finished day, and the idle days up to ``day``, into the daily sums."""
        self.active_days += 1
        self.days_w, self.days_w2, self.days_s1, self.days_s2, self.days_done = _fold_days(
            self.days_w,
            self.days_w2,
            self.days_s1,
            self.days_s2,
            self.days_done,
            self.day_count,
            day - self.day - 1,
        )

    def _learn_prompt(self, prompt: str) -> None:
        cot, topic, head, tail, content = prompt_text.analyse(prompt)
        self._learn_text(cot, topic)
        recent = self.recent
        r = RECENT
        slot = self.analysed % r
        is_dup = content in recent[2 * r : 3 * r]
        template = (head in recent[0:r] or tail in recent[r : 2 * r]) and not is_dup
        recent[slot] = head
        recent[r + slot] = tail
        recent[2 * r + slot] = content
        self._learn_template(template, is_dup)

    def _learn_content(self, prompt: str) -> None:
        """Exact repeats over a long horizon: a Bloom filter (2 bits of 2,048) of a
        hash-chosen quarter of prompts, cleared when 300 are in (false repeats <= 6%)."""
        h = zlib.crc32(prompt[:CONTENT_CHARS].encode(errors="replace")) ^ len(prompt)
        if h & 3:
            return
        seen = self.seen
        b1 = (h >> 2) & SEEN_MASK
        b2 = (h >> 13) & SEEN_MASK
        hit = (seen[b1 >> 3] >> (b1 & 7)) & (seen[b2 >> 3] >> (b2 & 7)) & 1
        self.repeat_count = self.repeat_count * SHARE_DECAY + 1.0
        if self.active_days:
            self.hashed_later += 1
        self.repeat_hits *= SHARE_DECAY
        if hit:
            self.repeat_hits += 1.0
            return
        if self.repeat_inserted >= SEEN_CAPACITY:
            seen[:] = bytes(SEEN_BYTES)
            self.repeat_inserted = 0
        seen[b1 >> 3] |= 1 << (b1 & 7)
        seen[b2 >> 3] |= 1 << (b2 & 7)
        self.repeat_inserted += 1

    def _learn_fingerprint(self, fingerprint: str) -> None:
        """Redacted prompt: the upstream SimHash stands in for the skeleton."""
        fp = prompt_text.fingerprint_int(fingerprint)
        recent = self.recent
        r = RECENT
        is_dup = fp in recent[0:r]
        template = not is_dup and any(
            (fp ^ other).bit_count() <= FINGERPRINT_RADIUS for other in recent[0:r] if other
        )
        recent[self.analysed % r] = fp
        self.text_count = self.text_count * TEXT_DECAY + 1.0
        self.text_cot *= TEXT_DECAY
        self._learn_template(template, is_dup)

    def _learn_text(self, cot: bool, topic: int) -> None:
        self.text_count = self.text_count * TEXT_DECAY + 1.0
        self.text_cot *= TEXT_DECAY
        if cot:
            self.text_cot += 1.0
        topics = self.topics
        topics[topic] += 1.0
        if topics[topic] >= 64.0:  # halve: recent mix, bounded
            for i in range(len(topics)):
                topics[i] *= 0.5

    def _learn_template(self, template: bool, is_dup: bool) -> None:
        self.analysed += 1
        self.text_template *= TEXT_DECAY
        if template:
            self.text_template += 1.0
        self.dup *= TEXT_DECAY
        if is_dup:
            self.dup += 1.0

    # -- signals ----------------------------------------------------------------------

    def features(self, now: float) -> dict[str, float]:
        """The named signals (see ``signals.SIGNALS``) as of event time ``now``."""
        dt = max(0.0, now - self.last_ts)
        short = self.rate_short * math.exp2(-dt / SHORT_HALF_LIFE)
        long_decay = math.exp2(-dt / LONG_HALF_LIFE)
        span = self.last_ts - self.first_ts
        # A decayed count c with half-life H is r * H / ln 2 at a steady rate r. A young
        # account has not filled the window: divide by the time actually covered, but
        # never by less than a floor, so a 3-second burst of 10 requests is not read as
        # 12,000 an hour (bursts are what benchmark runs and retry storms look like).
        covered = span + dt
        short_window = min(SHORT_HALF_LIFE / _LN2, max(covered, SHORT_FLOOR_S))
        long_window = min(LONG_HALF_LIFE / _LN2, max(covered, LONG_FLOOR_S))
        span_h = span / 3600.0
        c = self.ew_count or 1.0
        g = self.ew_gap_n
        tc = self.text_count
        gap_mean = self.ew_gap / g if g else 0.0
        gap_var = self.ew_gap2 / g - gap_mean * gap_mean if g >= 2.0 else 0.0
        topics = self.topics
        topic_total = sum(topics)
        return {
            "requests_per_hour": short * 3600.0 / short_window,
            "requests_per_hour_6h": self.rate_long * long_decay * 3600.0 / long_window,
            "output_tokens_per_hour": self.out_long * long_decay * 3600.0 / long_window,
            "active_span_hours": span_h,
            # shrunk towards a neutral prior until hours of history exist
            "duty_cycle": min(
                1.0, (self.n_hours + DUTY_PRIOR * DUTY_PRIOR_H) / (span_h + 1.0 + DUTY_PRIOR_H)
            ),
            "hour_flatness": _entropy(self.hours, self._hour_total, _HOUR_LOG_NORM)
            * min(1.0, span / 86_400.0),
            "burst_index": _burst_index(self.n, self.n_minutes, span),
            "interarrival_log_std": math.sqrt(gap_var) if gap_var > 0.0 else 0.0,
            "no_think_time_rate": self.ew_fast_gap / g if g else 0.0,
            "scripted_client_rate": self.ew_scripted / c,
            "ip_change_rate": self.ew_ip_change / c,
            "rate_limited_rate": self.ew_rate_limited / c,
            "fast_retry_rate": self.ew_retry_fast / self.ew_retry_n if self.ew_retry_n else 0.0,
            "cot_elicitation_rate": self.text_cot / tc if tc else 0.0,
            "capability_share": (
                sum(topics[i] for i in _CAPABILITY) / topic_total if topic_total else 0.0
            ),
            "topic_breadth": _entropy(topics, topic_total, _TOPIC_LOG_NORM),
            "template_repeat_rate": self.text_template / tc if tc else 0.0,
            "duplicate_prompt_rate": self.dup / tc if tc else 0.0,
            "repeated_content_rate": (
                self.repeat_hits / self.repeat_count if self.repeat_count else 0.0
            ),
            "logprobs_rate": self.ew_logprobs / c,
            "top_logprobs_mean": self.ew_top_logprobs / c,
            "multi_completion_rate": self.ew_multi_n / c,
            "temperature_zero_rate": self.ew_temp0 / c,
            "large_max_tokens_rate": self.ew_large_max / c,
            "output_input_ratio": self.ew_output / (self.ew_input + c),
            "tool_use_rate": self.ew_tools / c,
            "new_model_share": self.ew_new_model / c,
            **self._regime(now, self.ew_temp0 / c),
        }

    def _regime(self, now: float, temp0: float) -> dict[str, float]:
        """Two horizons of the account's own history: the last 24 hours against what
        came before, the spread of its days, and whether its runs repeat."""
        now_hour = int(now // 3600.0)
        first_hour = int(self.first_ts // 3600.0)
        lag = now_hour - self.last_hour
        mask = (self.hour_mask << lag) & _DAY_MASK if 0 <= lag < 24 else 0
        recent_active = mask.bit_count()
        recent = recent_active / 24.0 if self.n and now_hour - first_hour >= 23 else 0.0
        before_hours = now_hour - 23 - first_hour
        rise = 0.0
        if self.n and before_hours >= 24:
            rise = max(0.0, recent - (self.n_hours - recent_active) / before_hours)
        dispersion = 1.0
        now_day = int(now // 86_400.0)
        if self.day >= 0:
            w, w2, s1, s2, done = (
                self.days_w,
                self.days_w2,
                self.days_s1,
                self.days_s2,
                (self.days_done),
            )
            if now_day > self.day:  # the latest day is over: count it (and idle days since)
                w, w2, s1, s2, done = _fold_days(
                    w, w2, s1, s2, done, self.day_count, now_day - self.day - 1
                )
            mean = s1 / w if w else 0.0
            if (
                done >= QUOTA_MIN_DAYS
                and mean >= QUOTA_MIN_DAILY
                and w * w > w2
                and self.n < RUN_PACE * self.n_minutes
            ):
                var = max(0.0, s2 / w - mean * mean) / (1.0 - w2 / (w * w))
                dispersion = math.sqrt(var / mean)
        novel = 0.0
        if self.hashed_later >= NOVELTY_MIN_HASHED and self.n >= RUN_PACE * self.n_minutes:
            novel = temp0 * (1.0 - self.repeat_hits / self.repeat_count)
        return {
            "recent_duty_cycle": recent,
            "duty_cycle_rise": rise,
            "daily_volume_dispersion": dispersion,
            "novel_rerun_rate": novel,
        }

    # -- state ------------------------------------------------------------------------

    def to_state(self) -> AccountStateData:
        """Every slot by name (see ``detectors/state.py``): safe to serialise, evolvable.

        Slots at their default are not passed, so the encoder leaves them out (it
        recognises a default by identity): most counters of most accounts are zero, and
        each written field costs its name. A negative zero is kept: restores are exact.
        """
        scalars = zip(_SCALAR_NAMES, _SCALAR_DEFAULTS, _get_scalars(self), strict=True)
        values = {
            name: v
            for name, default, v in scalars
            if v != default or (type(v) is float and math.copysign(1.0, v) < 0.0)
        }
        return AccountStateData(
            **values,
            topics=le_bytes(self.topics) if any(self.topics) else b"",
            hours=le_bytes(self.hours) if any(self.hours) else b"",
            recent=le_bytes(self.recent) if any(self.recent) else b"",
            seen=seen if (seen := bytes(self.seen)) != _NOTHING_SEEN else b"",
        )

    @classmethod
    def from_state(cls, data: AccountStateData | dict[str, Any]) -> AccountState:
        """Inverse of :meth:`to_state` (or its plain msgpack form); rejects wrong shapes.

        Field types are checked by the typed decoder; array lengths here. An empty
        array (a checkpoint without the field) restores as zeros.
        """
        data = as_state(data, AccountStateData)
        state = cls()
        for slot, name, _ in _SCALAR_FIELDS:
            setattr(state, slot, getattr(data, name))
        for name in ("topics", "hours", "recent"):
            raw: bytes = getattr(data, name)
            if raw:
                current: array[Any] = getattr(state, name)
                if len(raw) != len(current) * current.itemsize:
                    raise ValueError(f"account state field {name!r} has the wrong shape")
                setattr(state, name, le_array(current.typecode, raw))
        if data.seen:
            if len(data.seen) != SEEN_BYTES:
                raise ValueError("account state field 'seen' has the wrong shape")
            state.seen = bytearray(data.seen)
        return state


#: (slot, state field, its default) of every slot saved as it is; arrays and the Bloom
#: filter aside
_SCALAR_FIELDS: tuple[tuple[str, str, Any], ...] = tuple(
    (f.name if f.name in AccountState.__slots__ else "_" + f.name, f.name, f.default)
    for f in msgspec.structs.fields(AccountStateData)
    if f.name not in ("topics", "hours", "recent", "seen")
)
_SCALAR_NAMES = tuple(name for _, name, _ in _SCALAR_FIELDS)
_SCALAR_DEFAULTS = tuple(default for _, _, default in _SCALAR_FIELDS)
_get_scalars = operator.attrgetter(*(slot for slot, _, _ in _SCALAR_FIELDS))
_NOTHING_SEEN = bytes(SEEN_BYTES)


def _fold_days(
    w: float, w2: float, s1: float, s2: float, done: int, count: int, idle: int
) -> tuple[float, float, float, float, int]:
    """Daily sums after one closed day of ``count`` requests and ``idle`` empty days.

    >>> _fold_days(0.0, 0.0, 0.0, 0.0, 0, 100, 0)
    (1.0, 1.0, 100.0, 10000.0, 1)
    """
    b = DAY_DECAY
    for c in (count, *([0] * min(idle, MAX_IDLE_DAYS))):
        w = w * b + 1.0
        w2 = w2 * b * b + 1.0
        s1 = s1 * b + c
        s2 = s2 * b + c * c
        done += 1
    return w, w2, s1, s2, done


def _burst_index(n: int, active_minutes: int, span_s: float) -> float:
    """Events per active minute over what steady (Poisson) traffic at the same mean rate
    would put in one: ~1 for steady random traffic, below 1 for a metronome, >> 1 when
    activity comes in bursts.

    >>> round(_burst_index(1440, 1440, 86_340.0), 2)  # exactly one a minute, all day
    0.63
    >>> round(_burst_index(2000, 8, 86_400.0), 1)  # two 4-minute benchmark runs a day
    135.2
    """
    if n == 0 or active_minutes == 0:
        return 1.0
    lam = n / (span_s / 60.0 + 1.0)
    expected = lam / -math.expm1(-lam)
    return (n / active_minutes) / expected


def _entropy(counts: array, total: float, log_norm: float) -> float:
    """Normalised Shannon entropy of a histogram (0 = one bin, 1 = uniform)."""
    if total <= 0.0:
        return 0.0
    h = 0.0
    for c in counts:
        if c > 0.0:
            p = c / total
            h -= p * math.log(p)
    return min(1.0, h / log_norm)
