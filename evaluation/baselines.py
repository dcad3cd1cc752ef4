"""The defences people use today, run on the same events: a rate limit and a batch model.

:class:`EventColumns` collects the few fields the baselines need while replay decodes
the file (one decode for everything); the baselines themselves are pure functions of
those columns.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import IsolationForest

from distillguard.events import RequestEvent

HOUR = 3600.0
DAY = 86_400.0


class EventColumns:
    """Per-event numbers in arrays (no per-event objects kept): the baselines' input."""

    def __init__(self) -> None:
        self.account_ids: list[str] = []
        self._acct_index: dict[str, int] = {}
        self._model_index: dict[str, int] = {}
        self._ip_index: dict[str, int] = {}
        self.acct = array("i")
        self.ts = array("d")
        self.in_tok = array("d")
        self.out_tok = array("d")
        self.flags = array("i")  # bit 0: logprobs, 1: temperature 0, 2: status 429, 3: n > 1
        self.tools = array("d")
        self.max_tokens = array("d")
        self.model = array("i")
        self.ip = array("i")

    def add(self, ev: RequestEvent) -> None:
        a = self._acct_index.get(ev.account_id)
        if a is None:
            a = self._acct_index[ev.account_id] = len(self.account_ids)
            self.account_ids.append(ev.account_id)
        m = self._model_index.setdefault(ev.model, len(self._model_index))
        ip = self._ip_index.setdefault(ev.ip or "", len(self._ip_index))
        self.acct.append(a)
        self.ts.append(ev.ts)
        self.in_tok.append(ev.input_tokens)
        self.out_tok.append(ev.output_tokens)
        self.flags.append(
            (ev.logprobs is True)
            | ((ev.temperature == 0) << 1)
            | ((ev.status == 429) << 2)
            | (((ev.n or 1) > 1) << 3)
        )
        self.tools.append(ev.tool_count or 0)
        self.max_tokens.append(ev.max_tokens or 0)
        self.model.append(m)
        self.ip.append(ip)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            name: np.frombuffer(getattr(self, name), dtype=getattr(self, name).typecode)
            for name in (
                "acct",
                "ts",
                "in_tok",
                "out_tok",
                "flags",
                "tools",
                "max_tokens",
                "model",
                "ip",
            )
        }


@dataclass
class MethodResult:
    """One method's verdicts: a score per account, who was alerted, and when."""

    name: str
    scores: dict[str, float]
    alerted: set[str]
    first_alert_ts: dict[str, float] = field(default_factory=dict)
    events_before: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    params: dict[str, float] = field(default_factory=dict)
    #: (event time, members named) of each cluster alert: the pipeline's only
    cluster_alerts: list[tuple[float, list[str]]] = field(default_factory=list)


def hourly_counts(acct: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(account, count) for every account-hour with at least one request."""
    hour = np.floor(ts / HOUR).astype(np.int64)
    keys = acct.astype(np.int64) * (1 << 32) + (hour - hour.min(initial=0))
    uniq, counts = np.unique(keys, return_counts=True)
    return (uniq >> 32).astype(np.int64), counts


def rate_limit(cols: EventColumns, benign: set[str], quantile: float = 99.9) -> MethodResult:
    """Per-account requests/hour limit at the benign ``quantile`` of account-hours.

    The limit is fitted on benign labels, an oracle advantage no real deployment has.
    An account is alerted when one clock hour exceeds the limit; detection happens at
    the request that crosses it. Score: the account's busiest hour.
    """
    arr = cols.arrays()
    acct, ts = arr["acct"], arr["ts"]
    ids = cols.account_ids
    owners, counts = hourly_counts(acct, ts)
    benign_idx = np.asarray([i for i, a in enumerate(ids) if a in benign], dtype=np.int64)
    benign_counts = counts[np.isin(owners, benign_idx)]
    limit = float(np.percentile(benign_counts, quantile)) if len(benign_counts) else math.inf
    busiest = np.zeros(len(ids))
    np.maximum.at(busiest, owners, counts)
    result = MethodResult(
        "rate limit (benign p99.9 req/h)",
        scores={a: float(busiest[i]) for i, a in enumerate(ids)},
        alerted=set(),
        params={"limit_per_hour": limit},
    )
    # The request that crosses the limit: running count within (account, hour) > limit.
    order = np.lexsort((ts, acct))
    a_sorted, t_sorted = acct[order], ts[order]
    hour = np.floor(t_sorted / HOUR).astype(np.int64)
    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = (a_sorted[1:] != a_sorted[:-1]) | (hour[1:] != hour[:-1])
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))
    running = np.arange(len(order)) - group_start + 1
    new_acct = np.ones(len(order), dtype=bool)
    new_acct[1:] = a_sorted[1:] != a_sorted[:-1]
    acct_start = np.maximum.accumulate(np.where(new_acct, np.arange(len(order)), 0))
    crossing = np.flatnonzero(running > limit)
    seen: set[int] = set()
    for k in crossing.tolist():
        a = int(a_sorted[k])
        if a in seen:
            continue
        seen.add(a)
        result.alerted.add(ids[a])
        result.first_alert_ts[ids[a]] = float(t_sorted[k])
        result.events_before[ids[a]] = int(k - acct_start[k])
    result.notes.append(
        f"limit {limit:.0f} requests/hour = 99.9th percentile of benign account-hours; "
        "fitted on benign labels (an oracle advantage a real deployment does not have)"
    )
    return result


DAILY_FEATURES = (
    "log_requests",
    "log_mean_in",
    "log_mean_out",
    "out_in_ratio",
    "logprobs_share",
    "temp0_share",
    "retry_share",
    "n_gt1_share",
    "mean_tools",
    "log_mean_max_tokens",
    "active_hours",
    "interarrival_cv",
    "distinct_ips",
    "newest_model_share",
)


def daily_aggregates(cols: EventColumns) -> tuple[np.ndarray, np.ndarray]:
    """(account index per row, feature matrix): one row per account-day, DAILY_FEATURES."""
    raw = cols.arrays()
    if len(raw["ts"]) == 0:
        return np.empty(0, dtype=np.int64), np.empty((0, len(DAILY_FEATURES)))
    day_raw = np.floor((raw["ts"] - raw["ts"].min()) / DAY).astype(np.int64)
    order = np.lexsort((raw["ts"], day_raw, raw["acct"]))
    arr = {name: col[order] for name, col in raw.items()}
    ts = arr["ts"]
    key = arr["acct"].astype(np.int64) * 4096 + day_raw[order]
    uniq, row, n = np.unique(key, return_inverse=True, return_counts=True)
    size = len(uniq)

    def total(x: np.ndarray) -> np.ndarray:
        return np.bincount(row, weights=np.asarray(x, dtype=np.float64), minlength=size)

    def mean(x: np.ndarray) -> np.ndarray:
        return total(x) / n

    flags = arr["flags"]
    # Inter-arrival regularity within the account-day (coefficient of variation).
    same = np.zeros(len(ts), dtype=bool)
    same[1:] = np.diff(key) == 0
    gaps = np.where(same, np.diff(ts, prepend=ts[0]), 0.0)
    gn = total(same)
    gmean = total(gaps) / np.maximum(gn, 1)
    gsq = total(gaps * gaps) / np.maximum(gn, 1)
    cv = np.sqrt(np.maximum(gsq - gmean**2, 0.0)) / np.maximum(gmean, 1e-9)
    cv = np.where(gn >= 2, cv, 1.0)
    hours = np.unique(key * 32 + np.floor((ts % DAY) / HOUR).astype(np.int64))
    active = np.bincount(np.searchsorted(uniq, hours // 32), minlength=size)
    ips = np.unique(key * (1 << 24) + arr["ip"].astype(np.int64))
    distinct_ips = np.bincount(np.searchsorted(uniq, ips >> 24), minlength=size)
    model = arr["model"]
    first_seen = np.full(int(model.max()) + 1, np.inf)
    np.minimum.at(first_seen, model, ts)
    newest = int(np.argmax(first_seen))
    mean_in, mean_out = mean(arr["in_tok"]), mean(arr["out_tok"])
    features = np.column_stack(
        [
            np.log1p(n),
            np.log1p(mean_in),
            np.log1p(mean_out),
            mean_out / np.maximum(mean_in, 1),
            mean(flags & 1),
            mean((flags >> 1) & 1),
            mean((flags >> 2) & 1),
            mean((flags >> 3) & 1),
            mean(arr["tools"]),
            np.log1p(mean(arr["max_tokens"])),
            active,
            cv,
            distinct_ips,
            mean(model == newest),
        ]
    )
    return (uniq // 4096).astype(np.int64), features


def isolation_forest(cols: EventColumns, seed: int = 0) -> MethodResult:
    """Batch IsolationForest over account-day aggregates, fitted and scored once at the end.

    Unsupervised, so no labels are used. An account's score is its most anomalous day;
    it is alerted if any day falls below the forest's own cut-off (``decision_function <
    0``, ``contamination="auto"``). A batch job only knows at the end of the data, so
    detection time is the end of the file.
    """
    owners, x = daily_aggregates(cols)
    ids = cols.account_ids
    result = MethodResult("IsolationForest (daily aggregates, batch)", scores={}, alerted=set())
    if len(x) == 0:
        return result
    forest = IsolationForest(n_estimators=200, random_state=seed, n_jobs=1).fit(x)
    anomaly = -forest.score_samples(x)
    decision = forest.decision_function(x)
    worst = np.full(len(ids), -np.inf)
    np.maximum.at(worst, owners, anomaly)
    flagged = np.zeros(len(ids), dtype=bool)
    np.logical_or.at(flagged, owners, decision < 0)
    arr = cols.arrays()
    end = float(arr["ts"].max())
    events = np.bincount(arr["acct"], minlength=len(ids))
    for i, a in enumerate(ids):
        result.scores[a] = float(worst[i])
        if flagged[i]:
            result.alerted.add(a)
            result.first_alert_ts[a] = end
            result.events_before[a] = int(events[i])
    result.notes.append(
        f"{len(x)} account-days x {x.shape[1]} features; alerted when decision_function < 0; "
        "scored once after the last event (detection delay = the whole file)"
    )
    return result
