"""The account pipeline: events -> per-account state -> scores, reasons and alerts.

Per event (the hot path): update the account's decayed state, analyse the prompt
text on a per-account sample, count. Per *scoring* (a cadence per account: at 4,
8, ... events, then every ``score_every`` events or ``score_interval_s`` of event
time): compute the named signals, place them in the population, run the expert
rules, the population anomaly model and the label feedback, fuse into one risk and
decide on an alert. Scoring on a cadence rather than per event is what keeps the
river models affordable (DESIGN.md: HalfSpaceTrees ~28 µs per learn+score).

The pipeline holds no I/O. ``snapshot``/``restore`` serialise every piece of state
as msgpack of plain numbers and strings (no pickle), so a checkpoint read back from
Redis cannot execute anything, and a restored pipeline continues with the same scores.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable

from distillguard.clock import EventClock
from distillguard.detectors import request_times as times_ring
from distillguard.detectors.alerts import AlertPolicy, OpenAlert, alert_id_for, build_alert
from distillguard.detectors.features.signals import BY_NAME, unit_signals
from distillguard.detectors.pipeline import BatchOutput, ChartPoint
from distillguard.detectors.scorers.anomaly import PopulationAnomaly
from distillguard.detectors.scorers.feedback import LabelFeedback
from distillguard.detectors.scorers.population import PopulationQuantiles
from distillguard.detectors.scorers.rules import ExpertRules, Rule
from distillguard.detectors.state import (
    AccountPipelineState,
    SharedCheckpoint,
    decode_account,
    decode_shared,
    encode_account,
    encode_shared,
)
from distillguard.detectors.tracked import Tracked
from distillguard.events import RequestEvent
from distillguard.records import AccountRisk, Alert, Label, Reason, iso, level_for
from distillguard.settings import Detectors

ANOMALY_SIGNAL = "population_anomaly"
FEEDBACK_SIGNAL = "analyst_feedback"
TOP_REASONS = 3
#: risk from which an account starts keeping sample prompts for a future alert
WATCH_RISK = 0.4
_SWEEP_EVERY = 1 << 16
#: distinct model names remembered for the release-pivot signal
MAX_MODELS = 10_000


class AccountPipeline:
    """Per-account detection: the default :class:`~distillguard.detectors.pipeline.Pipeline`.

    Parameters
    ----------
    config
        The ``detectors`` settings section (cadence, thresholds, rules, models).
    clock
        The event-time watermark shared with the other stages. Omitted, the pipeline
        makes its own and observes every event into it; given, it only reads it (the
        stage that created it observes). Eviction reads it; per-account windows use
        the account's own times.

    Examples
    --------
    >>> from distillguard.settings import get_settings
    >>> from distillguard.events import RequestEvent
    >>> pipe = AccountPipeline(get_settings().detectors)
    >>> for i in range(400):
    ...     _ = pipe.process(RequestEvent(
    ...         event_id=str(i), ts=1_790_000_000.0 + 2.0 * i, account_id="bulk", model="m",
    ...         input_tokens=40, output_tokens=1500, status=200, max_tokens=8192,
    ...         user_agent="python-requests/2.31", temperature=0.0,
    ...         prompt=f"Task {i}: write a python function for case {i}. Think step by step."))
    >>> pipe.risk("bulk").level in ("high", "critical")
    True
    >>> out = pipe.drain()
    >>> out.counts["bulk"], len(out.alerts) >= 1, out.alerts[0].subject_type
    (400, True, 'account')
    >>> pipe.risk("never-seen").risk
    0.0
    """

    def __init__(self, config: Detectors, clock: EventClock | None = None) -> None:
        self.config = config
        self._observes = clock is None
        self.clock = clock if clock is not None else EventClock()
        self.rules = ExpertRules(
            [Rule(r.signal, r.low, r.high, r.weight, r.group) for r in config.rules],
            interactions=[tuple(i) for i in config.interactions],  # type: ignore[misc]
            bias=config.bias,
        )
        self.policy = AlertPolicy(
            config.alert_threshold, config.realert_delta, config.min_events, config.min_span_s
        )
        a = config.anomaly
        self.population = PopulationQuantiles()
        self.anomaly = PopulationAnomaly(a.n_trees, a.height, a.window_size, a.seed)
        self.anomaly_scores = PopulationQuantiles()
        f = config.feedback
        self.feedback = LabelFeedback(
            f.bandwidth,
            f.strength,
            f.max_adjustment,
            f.capacity,
            f.min_per_class,
            f.population_capacity,
            f.confirmed_max,
            f.ratio_from,
            f.ratio_full,
        )
        #: accounts to rescore after a confirmed label (``learn_label``), next first
        self._sweep: deque[str] = deque()
        self._tracked: dict[str, Tracked] = {}
        self._model_first_seen: dict[str, float] = {}
        self._stream_start: float | None = None
        self._events = 0
        self._counts: Counter[str] = Counter()
        self._alerts: list[Alert] = []
        self._dirty: set[str] = set()
        #: the latest scoring of each account at medium risk or above, since the last drain
        self._chart: dict[str, ChartPoint] = {}
        self._forgotten: list[str] = []
        #: accounts whose score changed (rescored, evicted) since :meth:`take_changed`,
        #: kept only once asked for (the account stage of a split topology forwards them)
        self._changed: list[str] | None = None

    # -- hot path ---------------------------------------------------------------------

    def process(self, event: RequestEvent) -> bool:
        ts = event.ts  # epoch seconds: EventDecoder is the one place that parses time
        account_id = event.account_id
        self._counts[account_id] += 1
        t = self._tracked.get(account_id)
        if t is None:
            t = self._tracked[account_id] = Tracked(event.org_id)
        elif event.org_id is not None and t.org_id is None:
            t.org_id = event.org_id
        if self._observes:
            self.clock.observe(ts)
        state = t.state
        n = state.n
        cfg = self.config
        state.update(
            event,
            ts=ts,
            analyse_text=n < cfg.text_full_events or n % cfg.text_sample_every == 0,
            new_model=self._is_new_model(event.model, ts),
        )
        t.request_times_next = times_ring.record(
            t.request_times, t.request_times_next, ts, cfg.request_times_kept
        )
        if t.samples is not None and event.prompt and len(t.samples) < 5:
            t.samples.append(event.prompt[:500])
        self._events += 1
        if self._events % _SWEEP_EVERY == 0:
            self.evict_idle()
        swept = bool(self._sweep) and self._sweep_some(ts)
        if (
            n + 1 >= t.next_score_n
            or ts - t.last_scored_ts >= cfg.score_interval_s
            # risk already over the threshold, waiting only for the span gate to open
            or (
                t.alert is None
                and t.risk >= cfg.alert_threshold
                and ts - state.first_ts >= cfg.min_span_s
                and n + 1 >= cfg.min_events
            )
        ):
            return self._rescore(account_id, t, ts, event.prompt) or swept
        return swept

    def _sweep_some(self, now: float) -> bool:
        """Rescore the next few accounts of the sweep a confirmed label started.

        Scored as of each account's last event (what its label memory vectors are), so
        a light member of a missed campaign is judged again within minutes of the label
        instead of at its next request, hours later. True if one raised an alert.
        """
        raised = False
        sweep, tracked = self._sweep, self._tracked
        for _ in range(min(len(sweep), self.config.feedback.sweep_per_event)):
            account_id = sweep.popleft()
            t = tracked.get(account_id)
            if t is not None and t.state.n:
                raised = self._rescore(account_id, t, now, None, sweep=True) or raised
        return raised

    def _is_new_model(self, model: str, ts: float) -> bool:
        first = self._model_first_seen.get(model)
        if first is None:
            if len(self._model_first_seen) >= MAX_MODELS:
                return False  # a flood of made-up model names must not grow memory
            first = self._model_first_seen[model] = ts
            if self._stream_start is None:
                self._stream_start = ts
        start = self._stream_start if self._stream_start is not None else ts
        cfg = self.config
        return first - start >= cfg.new_model_after_s and ts - first <= cfg.new_model_window_s

    # -- scoring ----------------------------------------------------------------------

    def _rescore(
        self, account_id: str, t: Tracked, ts: float, prompt: str | None, *, sweep: bool = False
    ) -> bool:
        n = t.state.n
        if sweep:  # out of schedule: the account's own cadence stays as it was
            risk, reasons, x = self._score(t, t.state.last_ts, learn=False)
        else:
            every = self.config.score_every
            t.next_score_n = min(2 * n, n + every) if n < every else n + every
            t.last_scored_ts = ts
            risk, reasons, x = self._score(t, ts, learn=True)
        t.risk = risk
        t.reasons = reasons
        if self._changed is not None:
            self._changed.append(account_id)
        if abs(risk - t.drained_risk) >= self.config.risk_change or (
            level_for(risk) != level_for(t.drained_risk)
        ):
            self._dirty.add(account_id)
        if risk >= WATCH_RISK and t.samples is None:
            t.samples = []
        if risk >= WATCH_RISK:
            # the chart point is what this score was computed from, captured now
            self._chart[account_id] = ChartPoint(account_id, iso(ts), x)
        action = self.policy.decide(
            t.alert, risk=risk, events=n, span_s=t.state.last_ts - t.state.first_ts
        )
        if action == "none":
            return False
        if (
            t.samples is not None
            and prompt
            and len(t.samples) < 5
            and (not t.samples or t.samples[-1] != prompt[:500])
        ):
            t.samples.append(prompt[:500])
        if action == "open":
            t.alert = OpenAlert(alert_id_for(account_id, ts), ts, risk, n, t.state.first_ts)
            if t.first_alert_ts is None:
                t.first_alert_ts = ts
            verb = "opened"
        else:
            assert t.alert is not None
            t.alert.risk = risk
            t.alert.events = n
            verb = "evidence grew"
        alert = build_alert(
            account_id,
            t.alert,
            risk=risk,
            reasons=reasons,
            now=ts,
            last_event_ts=t.state.last_ts,
            features=x,
            sample_prompts=t.samples or [],
            org_id=t.org_id,
            action=verb,
        )
        self._alerts.append(alert)
        self._dirty.add(account_id)
        self._chart.pop(account_id, None)  # the alert carries this point itself
        return True

    def _score(
        self, t: Tracked, now: float, *, learn: bool
    ) -> tuple[float, list[Reason], dict[str, float]]:
        """Risk, reasons and the signals behind them; ``learn`` feeds the population."""
        cfg = self.config
        x = t.state.features(now)
        unit = unit_signals(x)
        anomaly = self.anomaly.score_one(unit)
        anomaly_pct = self.anomaly_scores.percentile(ANOMALY_SIGNAL, anomaly)
        if learn and now - t.last_pop_ts >= cfg.population_interval_s and t.state.n >= 2:
            t.last_pop_ts = now
            self.population.learn_one(x)
            self.feedback.observe_one(x)
            self.anomaly.learn_one(unit)
            self.anomaly_scores.learn_one({ANOMALY_SIGNAL: anomaly})
        logit, parts, t.signals = self.rules.explain_own(x)
        a = cfg.anomaly
        anomaly_part = 0.0
        if anomaly_pct is not None and anomaly_pct > a.from_percentile:
            anomaly_part = a.weight * (anomaly_pct - a.from_percentile) / (100 - a.from_percentile)
        feedback_part = self.feedback.score_one(x)
        # Evidence from a few minutes of activity is discounted towards the prior: a
        # burst shorter than the alert span gate (benchmark runs, retry storms) should
        # not read as a high risk to a platform service either.
        if cfg.min_span_s > 0.0:
            confidence = min(1.0, (t.state.last_ts - t.state.first_ts) / cfg.min_span_s)
            logit = cfg.bias + (logit - cfg.bias) * confidence
            anomaly_part *= confidence
        z = cfg.calibration_scale * (logit + anomaly_part + feedback_part) + cfg.calibration_shift
        risk = _sigmoid(z)
        reasons = [
            Reason(
                signal=s,
                value=round(x[s], 6),
                population_percentile=_pct(self.population.percentile(s, x[s])),
            )
            for s, c in sorted(parts.items(), key=lambda kv: -kv[1])[:TOP_REASONS]
            if c > 0.0
        ]
        if anomaly_part > 0.0:
            reasons.append(
                Reason(
                    signal=ANOMALY_SIGNAL,
                    value=round(anomaly, 6),
                    population_percentile=_pct(anomaly_pct),
                )
            )
        if abs(feedback_part) >= 0.5:
            dismissed, confirmed = self.feedback.labels_seen()
            reasons.append(
                Reason(
                    signal=FEEDBACK_SIGNAL,
                    value=round(feedback_part, 3),
                    detail=f"log-odds from analyst labels ({dismissed} dismissed, "
                    f"{confirmed} confirmed) on similar accounts",
                )
            )
        if not reasons:
            # nothing suspicious: still say where the account stands, most extreme first
            pct = self.population.percentiles(x)
            if pct:
                s = max(pct, key=lambda k: _tail(k, pct[k]))
                reasons.append(
                    Reason(signal=s, value=round(x[s], 6), population_percentile=_pct(pct[s]))
                )
        return risk, reasons, x

    # -- Pipeline protocol ------------------------------------------------------------

    def drain(self) -> BatchOutput:
        alerted = {a.subject_id for a in self._alerts}
        points = [p for a, p in sorted(self._chart.items()) if a not in alerted]
        out = BatchOutput(
            counts=self._counts, alerts=self._alerts, chart_points=points, forgotten=self._forgotten
        )
        self._chart = {}
        self._forgotten = []
        for account_id in sorted(self._dirty):
            t = self._tracked.get(account_id)
            if t is None:
                continue
            t.drained_risk = t.risk
            out.risks.append(self._account_risk(account_id, t))
        self._counts = Counter()
        self._alerts = []
        self._dirty = set()
        return out

    def risk(self, account_id: str) -> AccountRisk:
        t = self._tracked.get(account_id)
        if t is None:
            return AccountRisk(account_id=account_id)
        return self._account_risk(account_id, t)

    def _account_risk(self, account_id: str, t: Tracked) -> AccountRisk:
        return AccountRisk(
            account_id=account_id,
            risk=round(t.risk, 4),
            level=level_for(t.risk),
            reasons=list(t.reasons),
            updated_at=iso(t.last_scored_ts) if math.isfinite(t.last_scored_ts) else None,
        )

    def learn_label(self, label: Label) -> None:
        """Teach the feedback model; a dismissal closes the account's open alert."""
        x = {k: v for k, v in label.features.items() if isinstance(v, (int, float))}
        if not x:
            t = self._tracked.get(label.account_id)
            if t is None:
                return
            x = t.state.features(t.state.last_ts)
        confirmed = label.label == "distiller"
        self.feedback.learn_one(x, confirmed)
        t = self._tracked.get(label.account_id)
        if t is not None and label.label == "benign":
            t.alert = None
        if confirmed and self.config.feedback.sweep_per_event > 0:
            # everyone is judged again with the new label, not at their next scoring
            self._sweep = deque(self._tracked)

    def accounts(self) -> list[str]:
        return list(self._tracked)

    @property
    def events_seen(self) -> int:
        """Events learnt from since the stream began (shared state: survives checkpoints)."""
        return self._events

    # -- for other stages (linkage) and investigations ---------------------------------

    def account_features(self, account_id: str) -> dict[str, float] | None:
        """The account's named signals now (None if not tracked): what linkage can reuse."""
        t = self._tracked.get(account_id)
        return None if t is None else t.state.features(t.state.last_ts)

    def signal_logodds(self, account_id: str) -> dict[str, float]:
        """Each rule signal's own log-odds (interactions aside; nonzero ones only) at the
        account's last scoring; empty if untracked or not scored yet.

        Captured when the account is scored, not recomputed: the linkage stage asks it
        for members of changed clusters (a bounded sample) to tell coordinated
        extraction from honest coordination, which the fused risk cannot (scale and
        automation raise it too). Undiscounted by the span gate: a hydra member's few
        requests are thin evidence one by one, and the stage pools them over the cluster.
        """
        t = self._tracked.get(account_id)
        return {} if t is None else t.signals

    def requests_made(self, account_id: str) -> int:
        """Requests the account made while tracked; 0 if untracked or none kept (the
        cluster timeline shows the most active members first)."""
        t = self._tracked.get(account_id)
        return 0 if t is None or not t.request_times else t.state.n

    def request_times(self, account_id: str) -> list[int]:
        """The account's last request times (epoch seconds, arrival order; empty if
        untracked), read when a changed cluster is drained, for its timeline."""
        t = self._tracked.get(account_id)
        return [] if t is None else times_ring.in_order(t.request_times, t.request_times_next)

    def take_changed(self) -> list[str]:
        """Accounts rescored or evicted since the last call (their risk and signals may
        have moved), in that order; starts keeping them at the first call."""
        changed = self._changed
        self._changed = []
        return changed or []

    def first_alert_ts(self, account_id: str) -> float | None:
        t = self._tracked.get(account_id)
        return None if t is None else t.first_alert_ts

    # -- memory -----------------------------------------------------------------------

    def evict_idle(self) -> int:
        """Forget accounts idle longer than ``idle_evict_s`` and the oldest beyond the cap.

        Runs by itself every 65,536 events; returns how many accounts were forgotten.
        """
        before = len(self._tracked)
        horizon = self.clock.now - self.config.idle_evict_s
        idle = [a for a, t in self._tracked.items() if t.state.last_ts < horizon]
        for account_id in idle:
            del self._tracked[account_id]
        excess = len(self._tracked) - self.config.max_accounts
        oldest: list[str] = []
        if excess > 0:
            oldest = sorted(self._tracked, key=lambda a: self._tracked[a].state.last_ts)[:excess]
            for account_id in oldest:
                del self._tracked[account_id]
        self._forgotten.extend(idle)
        self._forgotten.extend(oldest)
        if self._changed is not None:
            self._changed.extend(idle)
            self._changed.extend(oldest)
        return before - len(self._tracked)

    # -- state ------------------------------------------------------------------------

    def shared_state(self) -> AccountPipelineState:
        """Models, population and model ages: what every account's score reads."""
        return AccountPipelineState(
            population=self.population.to_state(),
            anomaly=self.anomaly.to_state(),
            anomaly_scores=self.anomaly_scores.to_state(),
            feedback=self.feedback.to_state(),
            models=dict(self._model_first_seen),
            stream_start=self._stream_start,
            events=self._events,
            sweep=list(self._sweep),
        )

    def snapshot(self) -> bytes:
        """Every piece of state: a shared checkpoint with the accounts in it (no pickle).

        Take it after :meth:`drain`: outputs not yet drained are not part of it.
        """
        return encode_shared(
            clock=self.clock.to_state(),
            account=self.shared_state(),
            accounts={a: t.to_state() for a, t in self._tracked.items()},
        )

    def snapshot_shared(self) -> bytes:
        """Models and population only: with :meth:`snapshot_accounts`, an incremental checkpoint."""
        return encode_shared(clock=self.clock.to_state(), account=self.shared_state())

    def snapshot_accounts(self, account_ids: Iterable[str]) -> dict[str, bytes]:
        """Per-account state of the given (tracked) accounts, for incremental checkpoints."""
        out = {}
        for account_id in account_ids:
            t = self._tracked.get(account_id)
            if t is not None:
                out[account_id] = encode_account(t.to_state())
        return out

    def forget(self, account_ids: Iterable[str]) -> None:
        """Drop the given accounts' state (their partition moved, or the worker rolled back)."""
        for account_id in account_ids:
            self._tracked.pop(account_id, None)
            self._dirty.discard(account_id)
            self._chart.pop(account_id, None)

    def restore(self, data: bytes) -> None:
        """Replace all state with a :meth:`snapshot` (or :meth:`snapshot_shared`).

        Raises ``ValueError`` on anything that is not a checkpoint this release reads
        (``detectors/state.py``: older formats are migrated); the pipeline is left
        unchanged then.
        """
        self.restore_checkpoint(decode_shared(data))

    def restore_checkpoint(self, checkpoint: SharedCheckpoint) -> None:
        """Load a decoded shared checkpoint: models, the clock and (if it has them) accounts.

        Everything is rebuilt before anything is replaced, so a ValueError (no account
        pipeline state in it, a malformed model) leaves the pipeline as it was.
        """
        s = checkpoint.account
        if s is None:
            raise ValueError("the checkpoint holds no account-pipeline state")
        population = PopulationQuantiles.from_state(s.population)
        anomaly = PopulationAnomaly.from_state(s.anomaly)
        anomaly_scores = PopulationQuantiles.from_state(s.anomaly_scores)
        f = self.config.feedback
        feedback = LabelFeedback.from_state(
            s.feedback,
            population_capacity=f.population_capacity,
            confirmed_max=f.confirmed_max,
            ratio_from=f.ratio_from,
            ratio_full=f.ratio_full,
        )
        tracked = None
        if checkpoint.accounts is not None:
            kept = self.config.request_times_kept
            tracked = {a: Tracked.from_state(t, kept) for a, t in checkpoint.accounts.items()}
        self.population, self.anomaly, self.anomaly_scores = population, anomaly, anomaly_scores
        self.feedback = feedback
        self._model_first_seen = dict(s.models)
        self._stream_start = s.stream_start
        self._events = s.events
        self._sweep = deque(s.sweep)
        if tracked is not None:
            self._tracked = tracked
        self.clock.restore(checkpoint.clock)

    def restore_accounts(self, states: dict[str, bytes]) -> None:
        """Load per-account states written by :meth:`snapshot_accounts` (after ``restore``).

        All or nothing: one malformed state raises ValueError and loads none.
        """
        loaded = {}
        kept = self.config.request_times_kept
        for account_id, data in states.items():
            try:
                loaded[account_id] = Tracked.from_state(decode_account(data), kept)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"corrupt state for account {account_id!r}: {exc}") from None
        self._tracked.update(loaded)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _pct(p: float | None) -> float | None:
    return None if p is None else round(p, 2)


def _tail(signal: str, percentile: float) -> float:
    spec = BY_NAME.get(signal)
    return percentile if spec is None or spec.higher_is_suspicious else 100.0 - percentile
