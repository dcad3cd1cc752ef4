"""The one settings object.

Precedence, lowest first: field defaults, ``configs/default.yaml``, the file named by
``--config`` / ``DISTILLGUARD_CONFIG``, then ``DISTILLGUARD_*`` environment variables
(nested keys with ``__``, e.g. ``DISTILLGUARD_WORKER__BATCH_MAX_RECORDS``). Settings are
read once per process and frozen, so every module sees the same values.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.yaml"
CONFIG_ENV = "DISTILLGUARD_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Topics(_Section):
    requests: str = "api-requests"
    dead_letter: str = "api-requests.dlq"
    alerts: str = "abuse-alerts"
    partitions: int = Field(6, ge=1)


class Worker(_Section):
    group_id: str = "distillguard-worker"
    client_id: str = "distillguard"
    batch_max_records: int = Field(5000, ge=1)
    poll_timeout_ms: int = Field(200, ge=1)
    session_timeout_ms: int = Field(6000, ge=1000)
    heartbeat_interval_ms: int = Field(1000, ge=100)
    dedup_window: int = Field(200_000, ge=0)
    stats_interval_s: float = Field(5.0, gt=0)
    # Shared models (population, anomaly, feedback, linkage) are checkpointed this often
    # and on stop; per-account state is checkpointed with every batch.
    shared_checkpoint_interval_s: float = Field(10.0, gt=0)


class Validation(_Section):
    max_prompt_chars: int = Field(200_000, ge=1)
    max_message_bytes: int = Field(1_048_576, ge=1024)
    max_tokens: int = Field(10_000_000, ge=1)
    max_clock_skew_days: float = Field(3650, gt=0)


class RateLimit(_Section):
    """Token bucket per API key: ``rate_per_s`` sustained, ``burst`` at once."""

    rate_per_s: float = Field(gt=0)
    burst: int = Field(ge=1)


class StoreSettings(_Section):
    risk_ttl_s: int = Field(7 * 86400, ge=1)
    feature_history_len: int = Field(200, ge=1)
    sample_prompts_len: int = Field(20, ge=1)


class Api(_Section):
    """The HTTP service (``distillguard serve``) and the Redis store it reads."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    redis_timeout_s: float = Field(0.25, gt=0)
    key_cache_s: float = Field(2.0, ge=0)
    batch_max_ids: int = Field(1000, ge=1)
    page_max: int = Field(500, ge=1)
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=lambda: {
            "service": RateLimit(rate_per_s=5000, burst=10000),
            "analyst": RateLimit(rate_per_s=50, burst=200),
            "admin": RateLimit(rate_per_s=50, burst=200),
        }
    )
    store: StoreSettings = StoreSettings()


class DetectorRule(_Section):
    """One expert rule: a signal's ramp from ``low`` (no suspicion) to ``high`` (full)."""

    signal: str
    low: float
    high: float
    weight: float
    group: str


class DetectorAnomaly(_Section):
    n_trees: int = Field(10, ge=1)
    height: int = Field(8, ge=1, le=16)
    window_size: int = Field(250, ge=10)
    seed: int = 42
    #: log-odds added at the top of the anomaly-score distribution
    weight: float = Field(1.0, ge=0)
    #: anomaly-score percentile from which it starts to count
    from_percentile: float = Field(95.0, ge=0, le=100)


class DetectorFeedback(_Section):
    bandwidth: float = Field(0.05, gt=0)
    strength: float = Field(3.0, ge=0)
    max_adjustment: float = Field(4.0, ge=0)
    capacity: int = Field(512, ge=1)
    min_per_class: int = Field(10, ge=1)


class Detectors(_Section):
    """The account detectors (``detectors/``): cadence, thresholds, rules, models."""

    pipeline: Literal["linked", "account", "counting"] = "linked"
    #: risk at which an account alert opens (evaluate reads this too)
    alert_threshold: float = Field(0.7, ge=0, le=1)
    #: an open alert is re-raised as an update when risk grows by this much, or when
    #: the account's events since the last raise have doubled
    realert_delta: float = Field(0.1, gt=0)
    #: drain() reports an account's risk when it moved by at least this much
    risk_change: float = Field(0.05, ge=0)
    #: no alert before an account has this many events (too little evidence)
    min_events: int = Field(10, ge=1)
    #: no first alert before the account's activity spans this much event time
    min_span_s: float = Field(600.0, ge=0)
    #: score an account at 4, 8, 16, ... events up to ``score_every``, then every
    #: ``score_every`` events, and at least every ``score_interval_s`` of event time
    score_every: int = Field(32, ge=1)
    score_interval_s: float = Field(1800.0, gt=0)
    #: analyse every prompt of an account's first ``text_full_events`` events, then
    #: one in ``text_sample_every`` (shares stay unbiased; see bench/detectors.py)
    text_full_events: int = Field(32, ge=0)
    text_sample_every: int = Field(8, ge=1)
    #: an account feeds the population statistics at most once per this much event time
    population_interval_s: float = Field(900.0, gt=0)
    #: accounts idle this long (event time) are forgotten
    idle_evict_s: float = Field(3 * 86_400.0, gt=0)
    max_accounts: int = Field(2_000_000, ge=1)
    #: a model first seen at least ``new_model_after_s`` into the stream is "new" for
    #: ``new_model_window_s`` (model-release pivot)
    new_model_after_s: float = Field(6 * 3600.0, ge=0)
    new_model_window_s: float = Field(48 * 3600.0, gt=0)
    bias: float = -6.0
    rules: list[DetectorRule] = Field(default_factory=list)
    #: (group, group, weight): log-odds added per unit of both groups' evidence
    interactions: list[tuple[str, str, float]] = Field(default_factory=list)
    anomaly: DetectorAnomaly = DetectorAnomaly()
    feedback: DetectorFeedback = DetectorFeedback()
    #: Platt scaling of the fused log-odds: risk = sigmoid(scale * logit + shift)
    calibration_scale: float = 1.0
    calibration_shift: float = 0.0
    #: config of the linkage (cluster) stage, owned by ``detectors/linkage``
    linkage: dict[str, Any] = Field(default_factory=dict)


class Settings(BaseSettings):
    """Everything a distillguard process can be told."""

    model_config = SettingsConfigDict(
        env_prefix="DISTILLGUARD_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    topics: Topics = Topics()
    worker: Worker = Worker()
    validation: Validation = Validation()
    # Sections owned by later stages (sim) are plain mappings until
    # those stages give them a model; unknown keys are kept, not rejected.
    detectors: Detectors = Detectors()
    api: Api = Api()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFiles(settings_cls))


class _YamlFiles(PydanticBaseSettingsSource):
    """Merges the default YAML file with the one named by ``DISTILLGUARD_CONFIG``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        paths = [DEFAULT_CONFIG]
        if extra := os.environ.get(CONFIG_ENV):
            paths.append(Path(extra))
        for path in paths:
            if path.exists():
                _deep_merge(merged, load_yaml(path))
            elif path != DEFAULT_CONFIG:
                raise FileNotFoundError(f"config file not found: {path}")
        return merged


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    return data


def _deep_merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def use_config(path: Path | None) -> None:
    """Point the process at an extra config file (the CLI's ``--config``)."""
    if path is not None:
        os.environ[CONFIG_ENV] = str(path.resolve())
    get_settings.cache_clear()
