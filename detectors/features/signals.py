"""The named signals one account's events can show, and what each one means.

This table is the single source for signal names (they appear in reasons, alerts,
labels and docs) and for how a signal is placed in the population: ``kind`` picks
the histogram grid of :class:`~distillguard.detectors.scorers.population.PopulationQuantiles`
("share" for values in [0, 1], "magnitude" for non-negative values spanning orders of
magnitude). ``higher_is_suspicious`` says which tail matters for reasons and for
rules: for regularity the *low* tail (machine-like timing) is the suspicious one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Signal:
    name: str
    kind: Literal["share", "magnitude"]
    group: str
    meaning: str
    why: str
    benign: str
    higher_is_suspicious: bool = True
    #: fed to the population anomaly trees and the label memory (``unit_vector``).
    #: Signals added later say False: a stored label memory's rows have one value per
    #: model signal, so a new one would invalidate every checkpoint's labels.
    in_models: bool = True


SIGNALS: tuple[Signal, ...] = (
    Signal(
        "requests_per_hour",
        "magnitude",
        "volume",
        "requests per hour over the last ~15 minutes (decayed count)",
        "a distiller needs many outputs: its rate is far above peers and starts high",
        "chat-app backends and batch jobs are also high; hobbyists are low",
    ),
    Signal(
        "requests_per_hour_6h",
        "magnitude",
        "volume",
        "requests per hour over the last ~6 hours (decayed count)",
        "sustained volume, not a burst: extraction runs for hours",
        "evaluation runners burst then stop, so their 6 h rate is far below their peak",
    ),
    Signal(
        "output_tokens_per_hour",
        "magnitude",
        "volume",
        "output tokens per hour over the last ~6 hours",
        "the product of distillation is output text; harvesting maximises it",
        "batch classification jobs are high volume with short outputs",
    ),
    Signal(
        "active_span_hours",
        "magnitude",
        "persistence",
        "hours between the account's first and latest request",
        "context for persistence signals: a campaign runs for days",
        "every long-lived account grows this; it never decides alone",
    ),
    Signal(
        "duty_cycle",
        "share",
        "persistence",
        "share of the clock hours since first seen in which the account was active",
        "extraction pipelines run around the clock",
        "people and office-hours tools are active a third of the hours or less",
    ),
    Signal(
        "hour_flatness",
        "share",
        "persistence",
        "normalised entropy of the hour-of-day profile, shrunk until a day is observed",
        "24/7 activity has a flat hour-of-day profile",
        "humans and work-hours products have a strong diurnal peak",
    ),
    Signal(
        "burst_index",
        "magnitude",
        "persistence",
        "events per active minute over what steady traffic at the same mean rate would give",
        "extraction pipelines are steady (~1): they keep the queue full around the clock",
        "benchmark runs, nightly batch windows and people's sessions come in bursts (>> 1)",
        higher_is_suspicious=False,
    ),
    Signal(
        "interarrival_log_std",
        "magnitude",
        "automation",
        "standard deviation of log inter-arrival gaps (low = metronome-like)",
        "scripts send at a fixed pace; people and many-user backends are bursty",
        "cron-driven batch jobs are regular too",
        higher_is_suspicious=False,
    ),
    Signal(
        "no_think_time_rate",
        "share",
        "automation",
        "share of requests less than 2 s after the previous one",
        "no human reads an answer and types the next prompt in 2 s",
        "backends serving many users and agents also fire back-to-back",
    ),
    Signal(
        "scripted_client_rate",
        "share",
        "automation",
        "share of requests from bare HTTP libraries (python-requests, curl, aiohttp, Go...)",
        "extraction scripts rarely use the vendor SDK or a product's user agent",
        "internal tools and batch jobs are also scripted",
    ),
    Signal(
        "ip_change_rate",
        "share",
        "automation",
        "share of requests from a different IP than the previous request",
        "rotating proxy pools hide a campaign's origin",
        "mobile users and NAT pools change IPs now and then, not on every request",
    ),
    Signal(
        "rate_limited_rate",
        "share",
        "automation",
        "share of requests answered 429",
        "a harvester pushes against its rate limit all the time",
        "a well-behaved client hits 429 rarely and backs off",
    ),
    Signal(
        "fast_retry_rate",
        "share",
        "automation",
        "share of requests after a 429 that came within 5 s (no back-off)",
        "scripts retry immediately to keep the pipeline full",
        "SDKs back off exponentially",
    ),
    Signal(
        "cot_elicitation_rate",
        "share",
        "elicitation",
        "share of prompts asking for step-by-step reasoning, rubrics or restated explanations",
        "reasoning traces are what a student model most wants to copy",
        "research groups ask for chain of thought at modest volume",
    ),
    Signal(
        "capability_share",
        "share",
        "capability",
        "share of prompts about code, maths, tool use or logic",
        "distillers target the capabilities worth stealing",
        "coding assistants are all code; evaluation runners all maths",
    ),
    Signal(
        "topic_breadth",
        "share",
        "capability",
        "normalised entropy of the account's topic mix (1 = sweeps every domain)",
        "systematic sweeps across domains build a general student model",
        "chat backends with many users are broad too",
    ),
    Signal(
        "template_repeat_rate",
        "share",
        "templating",
        "share of prompts sharing a digit-masked head or tail with a recent prompt",
        "many prompts filled into one template: same skeleton, different content",
        "enterprise batch jobs are templated too (but narrow, without elicitation)",
    ),
    Signal(
        "duplicate_prompt_rate",
        "share",
        "templating",
        "share of prompts identical to one of the last few",
        "distillers want new content: duplicates are rare for them",
        "retries, benchmark reruns and chat backends repeat prompts",
        higher_is_suspicious=False,
    ),
    Signal(
        "repeated_content_rate",
        "share",
        "templating",
        "share of prompts sent before by the account, over its last ~1,200 prompts",
        "a distiller pays for new content; a repeat teaches its student nothing",
        "benchmark reruns repeat the same hundreds of prompts; apps repeat popular questions",
        higher_is_suspicious=False,
    ),
    Signal(
        "logprobs_rate",
        "share",
        "harvesting",
        "share of requests asking for token log-probabilities",
        "logprobs carry the teacher's full distribution: the richest distillation signal",
        "evaluation runners sometimes ask for logprobs",
    ),
    Signal(
        "top_logprobs_mean",
        "magnitude",
        "harvesting",
        "mean number of alternatives per token requested",
        "more alternatives = more of the teacher's distribution per request",
        "calibration studies use a few",
    ),
    Signal(
        "multi_completion_rate",
        "share",
        "harvesting",
        "share of requests with n > 1",
        "several samples per prompt multiply harvested outputs",
        "some products ask for alternatives to show users",
    ),
    Signal(
        "temperature_zero_rate",
        "share",
        "harvesting",
        "share of requests at temperature 0",
        "deterministic outputs make clean training targets",
        "evaluation runners and batch jobs use temperature 0 too",
    ),
    Signal(
        "large_max_tokens_rate",
        "share",
        "harvesting",
        "share of requests with max_tokens >= 4096",
        "long completions carry full reasoning traces",
        "long-form writing tools",
    ),
    Signal(
        "output_input_ratio",
        "magnitude",
        "harvesting",
        "output tokens per input token (recent mean)",
        "short prompts eliciting long answers maximise output per request",
        "summarisation and classification have low ratios",
    ),
    Signal(
        "tool_use_rate",
        "share",
        "capability",
        "share of requests declaring tools",
        "agentic traces are a prized capability",
        "agent products use tools on most requests",
    ),
    Signal(
        "new_model_share",
        "share",
        "pivot",
        "share of recent requests to a model released (first seen) less than 48 h earlier",
        "distillers move their traffic to a new model within hours of its release",
        "most people try a new model; few move all their traffic at once",
    ),
    Signal(
        "recent_duty_cycle",
        "share",
        "regime",
        "share of the last 24 clock hours in which the account was active (0 until a day is seen)",
        "a harvester keeps its queue full day and night, whatever the account did before",
        "24/7 products are always on (since their first day); people sleep",
        in_models=False,
    ),
    Signal(
        "duty_cycle_rise",
        "share",
        "regime",
        "last 24 h duty cycle minus the duty cycle before it (needs a day of earlier history)",
        "a warmed-up account switched to harvesting: part-time for days, then around the clock",
        "a person who gets busier still sleeps (a rise of 0.2-0.4); 24/7 services never rose",
        in_models=False,
    ),
    Signal(
        "daily_volume_dispersion",
        "magnitude",
        "regime",
        "spread of requests per UTC day relative to chance: CV x sqrt(mean) (1 = Poisson); "
        "needs 3 days at >= 50 a day and session pace, else 1",
        "a controller's quota sends the same number every day: far below chance (~0.25)",
        "people, coding assistants and many-user services vary at chance or more (>= 0.8)",
        higher_is_suspicious=False,
        in_models=False,
    ),
    Signal(
        "novel_rerun_rate",
        "share",
        "regime",
        "temperature-0 share times the share of prompts never sent before, for run-paced "
        "accounts (>= 20 a minute) once ~250 prompts came after their first day",
        "a benchmark mimic runs a new 'benchmark' every day: outputs it has not collected",
        "real evaluation runs repeat the same items (their novelty falls on the second run)",
        in_models=False,
    ),
)

SIGNAL_NAMES: tuple[str, ...] = tuple(s.name for s in SIGNALS)
BY_NAME: dict[str, Signal] = {s.name: s for s in SIGNALS}
#: the signals the anomaly trees and the label memory see, in this order
MODEL_SIGNAL_NAMES: tuple[str, ...] = tuple(s.name for s in SIGNALS if s.in_models)

_LOG_SIGNALS = frozenset(s.name for s in SIGNALS if s.kind == "magnitude")
#: Magnitudes are mapped to [0, 1] by log10(1 + v) / this (1 at 100,000).
_LOG_SPAN = 5.0


def unit_vector(x: dict[str, float]) -> list[float]:
    """Model signals (:data:`MODEL_SIGNAL_NAMES`, in order), each mapped to [0, 1] by a
    fixed transform.

    Shares as they are, magnitudes on a log scale; an absent or non-finite signal is 0.
    Fixed rather than population percentiles: models fed with it (anomaly trees,
    label memory) mean the same thing after the population drifts, and it costs no
    lookups.

    >>> v = unit_vector({"cot_elicitation_rate": 0.5, "requests_per_hour": 999.0})
    >>> i = MODEL_SIGNAL_NAMES.index
    >>> v[i("cot_elicitation_rate")], v[i("requests_per_hour")]
    (0.5, 0.6)
    """
    out = []
    for name in MODEL_SIGNAL_NAMES:
        v = x.get(name, 0.0)
        if not v > 0.0 or not math.isfinite(v):
            out.append(0.0)
        elif name in _LOG_SIGNALS:
            out.append(min(1.0, math.log10(1.0 + v) / _LOG_SPAN))
        else:
            out.append(min(1.0, v))
    return out


def unit_signals(x: dict[str, float]) -> dict[str, float]:
    """:func:`unit_vector` as a mapping (the input river models take)."""
    return dict(zip(MODEL_SIGNAL_NAMES, unit_vector(x), strict=True))
