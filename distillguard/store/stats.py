"""The workers' own counters, as they publish them in ``dg:worker:stats`` (and, for the
cluster stage of a split topology, ``dg:worker:stats:cluster``), and each worker's lag
(``dg:worker:lag``)."""

from __future__ import annotations

import time
from collections.abc import Mapping

import redis
import redis.asyncio as aredis

from distillguard.store.connection import text
from distillguard.store.schema import (
    CLUSTER_STAGE_STATS,
    WORKER_LAG,
    WORKER_LAG_FRESH_S,
    WORKER_LAG_KEEP_S,
    WORKER_STATS,
)


async def worker_stats(
    client: aredis.Redis, lags: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Numeric fields of the stats hashes (non-numeric ones skipped); the cluster stage's
    prefixed ``cluster_`` (``cluster_processed``, ``cluster_lag``).

    ``lag`` and ``cluster_lag`` are the sums over the workers that reported their own
    lag lately (:func:`worker_lags`, read here unless given), when any did: with
    several account workers the stats hash holds only the last writer's.
    """
    out: dict[str, float] = {}
    for key, prefix in ((WORKER_STATS, ""), (CLUSTER_STAGE_STATS, "cluster_")):
        for field, value in (await client.hgetall(key)).items():
            try:
                out[prefix + text(field)] = float(value)
            except ValueError:
                continue
    if lags is None:
        lags = await worker_lags(client)
    for prefix, stages in (("", ("all", "account")), ("cluster_", ("cluster",))):
        mine = [v for name, v in lags.items() if name.split(":", 1)[0] in stages]
        if mine:
            out[prefix + "lag"] = sum(mine)
    return out


async def worker_lags(client: aredis.Redis, now: float | None = None) -> dict[str, float]:
    """Each worker's lag, ``<stage>:<instance>`` -> records behind, if reported within
    ``WORKER_LAG_FRESH_S``: a stale field (a worker gone) is left out, not deleted (a
    read must not race a worker's write)."""
    now = time.time() if now is None else now
    out: dict[str, float] = {}
    for field, value in (await client.hgetall(WORKER_LAG)).items():
        parsed = _lag_and_time(text(value))
        if parsed is not None and now - parsed[1] <= WORKER_LAG_FRESH_S:
            out[text(field)] = parsed[0]
    return out


def _lag_and_time(raw: str) -> tuple[float, float] | None:
    """A lag field's ``"<lag> <unix time>"``, or None if it is not that."""
    try:
        lag, at = (float(x) for x in raw.split())
    except ValueError:
        return None
    return lag, at


#: delete a hash field only if it still holds the value read: a worker that reports
#: again between the read and the delete keeps its fresh value
_DELETE_IF_UNCHANGED = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


def stale_lag_fields(
    fields: Mapping[bytes | str, bytes | str], now: float, keep_s: float = WORKER_LAG_KEEP_S
) -> list[tuple[str, str]]:
    """The ``(field, value)`` pairs of ``dg:worker:lag`` written more than ``keep_s``
    ago, or unreadable (no worker writes those).

    >>> stale_lag_fields({"account:a": "3 100", "account:b": "0 9000", "x": "junk"}, 9050, 60)
    [('account:a', '3 100'), ('x', 'junk')]
    """
    out = []
    for field, value in fields.items():
        raw = text(value)
        parsed = _lag_and_time(raw)
        if parsed is None or now - parsed[1] > keep_s:
            out.append((text(field), raw))
    return out


def prune_worker_lags(client: redis.Redis, now: float | None = None) -> int:
    """Delete the lag fields of workers gone for ``WORKER_LAG_KEEP_S``; how many went.

    Each delete checks the value is still the one read, so it never races a worker's
    own write (a worker back after a day writes again and keeps its field).
    """
    now = time.time() if now is None else now
    stale = stale_lag_fields(client.hgetall(WORKER_LAG), now)
    script = client.register_script(_DELETE_IF_UNCHANGED)
    return sum(int(script(keys=[WORKER_LAG], args=[name, raw])) for name, raw in stale)
