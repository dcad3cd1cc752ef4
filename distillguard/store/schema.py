"""Every Redis key distillguard uses, in one place.

Nothing outside this module spells a key. The table is the contract between the
streaming worker (writes detector output), the API (reads it, records analysts'
actions) and the detectors (read labels back).

=====================================  ======  ===========  ===============  =================
key                                    type    TTL          written by       read by
=====================================  ======  ===========  ===============  =================
``dg:risk:{account}``                  string  risk_ttl_s   worker (writer)  API risk lookup
  JSON ``records.AccountRisk`` (CONTRACT §4 shape), refreshed every batch the
  account changes in; an account silent for ``risk_ttl_s`` reads as unknown (0.0).
``dg:cluster-risk:{account}``          string  risk_ttl_s   cluster stage    API risk lookup
  JSON ``records.ClusterRisk``: what lifts the account above ``dg:risk`` (its
  cluster, an analysts' case) when the pipeline is split (``worker.stage``); the
  lookup reports ``records.combine_risk`` of the two. Absent in one process.
``dg:alert:{alert_id}``                string  none         worker, API      API
  JSON ``records.Alert``: current state, reasons, evidence, history.
``dg:alerts:all``                      zset    none         worker           API list
``dg:alerts:status:{status}``          zset    none         worker, API      API list filter
``dg:alerts:level:{level}``            zset    none         worker           API list filter
``dg:alerts:account:{account}``        zset    none         worker           API list filter
``dg:alerts:cluster:{cluster}``        zset    none         worker           API list filter
  Alert indexes. Every member is ``index_member(alert)`` =
  ``"{created_ms:013d}:{alert_id}"`` with score 0, so lexicographic order is
  creation order and a member is a unique, exact cursor for keyset pagination
  (``ZRANGE ... BYLEX REV``). Cluster alerts are indexed under every member account.
``dg:alerts:open``                     hash    none         worker, API      worker (dedup)
  ``"{subject_type}:{subject_id}"`` -> alert_id of the subject's open or
  acknowledged alert; the field is removed when the alert is confirmed/dismissed.
``dg:alerts:events``                   pubsub  --           worker, API      API SSE
  channel: ``{"event": "created"|"updated", "alert": <Alert JSON>}``.
``dg:cluster:{cluster_id}``            string  none         worker           API
  JSON ``records.Cluster``.
``dg:clusters``                        zset    none         worker           API list
  cluster_id scored by risk.
``dg:timeline:{cluster_id}``           string  none         worker           API
  JSON ``records.ClusterTimeline``: members' last request times, written with the
  cluster (deleted when it dissolves); apart so the cluster list stays small.
``dg:suppressions``                    hash    none         API (admin)      worker (writer), API
  suppression id -> JSON ``store.models.Suppression``; expired rules are ignored.
``dg:feedback:labels``                 stream  MAXLEN ~1M   API (review)     detectors
  field ``label`` = JSON ``records.Label``; read with ``feedback.read_labels``.
``dg:audit``                           stream  MAXLEN ~1M   API              API (admin)
  field ``entry`` = JSON ``store.models.AuditEntry``, one per analyst/admin action.
``dg:apikey:{key_id}``                 string  none         CLI, API admin   API auth
  JSON ``store.models.ApiKeyRecord`` (SHA-256 of the secret, never the secret).
``dg:apikeys``                         set     none         CLI, API admin   API list
``dg:features:{account}``              list    none (cap)   worker           API alert detail
  newest first, JSON ``{"ts": ..., "features": {...}}``, capped at
  ``feature_history_len``.
``dg:prompts:{account}``               list    none (cap)   worker           API alert detail
  newest first, each prompt truncated to 500 chars, capped at ``sample_prompts_len``.
``dg:worker:stats``                    hash    none         worker           API ``/metrics``
  numeric fields (processed, rejected, duplicates, lag ...) exported as gauges.
``dg:worker:stats:cluster``            hash    none         cluster stage    API ``/metrics``
  the same for a split topology's cluster stage, exported prefixed ``cluster_``.
=====================================  ======  ===========  ===============  =================

The worker's checkpoint keys (written together in one transaction per checkpoint by
``distillguard.stream.checkpoint``, with the store writes it covers; ``{group}`` is
the consumer group, ``{instance}`` the worker's name where several share a group):

=============================================  ======  ==================================
``dg:account:requests``                        hash    account -> requests counted
``dg:ckpt:{group}:{topic}:offsets``            hash    partition -> next offset
``dg:ckpt:{group}:{topic}:{partition}:seen``   list    event-id de-duplication window
``dg:ckpt:{group}:{topic}:{partition}:state``  hash    account -> detector state
``dg:ckpt:{group}:{topic}:shared[:{instance}]`` string msgpack ``SharedCheckpoint``: shared
                                                       state, feedback position, offsets covered
=============================================  ======  ==================================
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from distillguard.records import dumps as _dumps

if TYPE_CHECKING:
    from distillguard.records import Alert

PREFIX = "dg:"

ALERTS_ALL = "dg:alerts:all"
ALERTS_OPEN = "dg:alerts:open"
ALERT_EVENTS_CHANNEL = "dg:alerts:events"
CLUSTERS = "dg:clusters"
SUPPRESSIONS = "dg:suppressions"
FEEDBACK_STREAM = "dg:feedback:labels"
AUDIT_STREAM = "dg:audit"
API_KEYS = "dg:apikeys"
WORKER_STATS = "dg:worker:stats"
#: the cluster stage's own counters (split topology): its lag is on another topic
CLUSTER_STAGE_STATS = "dg:worker:stats:cluster"
#: each worker's own lag, field ``<stage>:<instance>`` -> ``"<lag> <unix time>"``: with
#: several account workers one hash field would hold only the last writer's
WORKER_LAG = "dg:worker:lag"
#: a worker's lag older than this is a worker gone (stopped, crashed, renamed)
WORKER_LAG_FRESH_S = 120.0
#: a lag field this old is deleted by the next worker to report: an unnamed worker's
#: field is named by host and pid, so every restart would otherwise leave one behind
WORKER_LAG_KEEP_S = 86_400.0

#: Streams are trimmed approximately to this length (MAXLEN ~): the history detectors
#: and auditors need, without unbounded growth.
STREAM_MAXLEN = 1_000_000
#: Longest sample prompt kept, in characters.
PROMPT_MAX_CHARS = 500


ACCOUNT_REQUESTS = "dg:account:requests"


def checkpoint_offsets(group: str, topic: str) -> str:
    return f"dg:ckpt:{group}:{topic}:offsets"


def checkpoint_seen(group: str, topic: str, partition: int) -> str:
    return f"dg:ckpt:{group}:{topic}:{partition}:seen"


def checkpoint_account_state(group: str, topic: str, partition: int) -> str:
    return f"dg:ckpt:{group}:{topic}:{partition}:state"


def checkpoint_shared(group: str, topic: str, instance: str = "") -> str:
    suffix = f":{instance}" if instance else ""
    return f"dg:ckpt:{group}:{topic}:shared{suffix}"


def risk(account_id: str) -> str:
    return f"dg:risk:{account_id}"


def cluster_risk(account_id: str) -> str:
    return f"dg:cluster-risk:{account_id}"


def alert(alert_id: str) -> str:
    return f"dg:alert:{alert_id}"


def alerts_by_status(status: str) -> str:
    return f"dg:alerts:status:{status}"


def alerts_by_level(level: str) -> str:
    return f"dg:alerts:level:{level}"


def alerts_by_account(account_id: str) -> str:
    return f"dg:alerts:account:{account_id}"


def alerts_by_cluster(cluster_id: str) -> str:
    return f"dg:alerts:cluster:{cluster_id}"


def cluster(cluster_id: str) -> str:
    return f"dg:cluster:{cluster_id}"


def cluster_timeline(cluster_id: str) -> str:
    return f"dg:timeline:{cluster_id}"


def api_key(key_id: str) -> str:
    return f"dg:apikey:{key_id}"


def features(account_id: str) -> str:
    return f"dg:features:{account_id}"


def prompts(account_id: str) -> str:
    return f"dg:prompts:{account_id}"


def subject_field(subject_type: str, subject_id: str) -> str:
    """The ``dg:alerts:open`` field of a subject."""
    return f"{subject_type}:{subject_id}"


def epoch_ms(stamp: str) -> int:
    """RFC 3339 to epoch milliseconds (``Z`` accepted).

    >>> epoch_ms("2026-11-20T10:00:00Z")
    1795168800000
    """
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def index_member(created_at: str, alert_id: str) -> str:
    """The alert's member in every index zset: sorts by creation time, unique by id.

    >>> index_member("2026-11-20T10:00:00Z", "alr_1")
    '1795168800000:alr_1'
    """
    return f"{epoch_ms(created_at):013d}:{alert_id}"


def member_alert_id(member: bytes | str) -> str:
    text = member.decode() if isinstance(member, bytes) else member
    return text.split(":", 1)[1]


def alert_index_keys(alert: Alert) -> list[str]:
    """Every index zset the alert belongs in (status and level included)."""
    keys = [
        ALERTS_ALL,
        alerts_by_status(alert.status),
        alerts_by_level(alert.level),
    ]
    if alert.subject_type == "account":
        keys.append(alerts_by_account(alert.subject_id))
    keys.extend(alerts_by_account(m) for m in alert.members)
    cluster_id = alert.subject_id if alert.subject_type == "cluster" else alert.cluster_id
    if cluster_id:
        keys.append(alerts_by_cluster(cluster_id))
    return list(dict.fromkeys(keys))


def event_message(kind: str, alert: Alert) -> bytes:
    """The pub/sub payload SSE clients receive."""
    return b'{"event":"' + kind.encode() + b'","alert":' + _dumps(alert) + b"}"
