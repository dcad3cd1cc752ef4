"""Topic management: create the topics distillguard needs, and check the ones it finds.

Names alone are not enough. The worker checkpoints per partition of the request topic
and events are routed there by account key, so a request topic with another partition
count (auto-created by a client with the broker's default, say) moves accounts between
partitions and their state. A replication factor or ``min.insync.replicas`` other than
the deployment intends makes ``acks=all`` mean less (or every write fail). So
:func:`check_topics` verifies all three, for the request, dead-letter and alert topics,
and raises :class:`TopicMismatch` naming every difference; the worker calls it before
it consumes.

``min.insync.replicas`` needs DescribeConfigs. A broker that does not implement it,
or reports no value (Tansu reports only configs set explicitly at creation, which
:func:`ensure_topics` does), is not checked for it, and that is logged.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.protocol.api_key import ApiKey

from distillguard.settings import Settings, Topics

log = logging.getLogger("distillguard.topics")

MIN_ISR = "min.insync.replicas"

T = TypeVar("T")


class TopicMismatch(RuntimeError):
    """The cluster's topics are not what settings require; ``problems`` lists each."""

    def __init__(self, bootstrap: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"topics on {bootstrap} do not match settings (topics.*): " + "; ".join(problems)
        )


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """What one topic must look like; ``partitions=None`` accepts any count."""

    name: str
    create_partitions: int
    partitions: int | None
    replication_factor: int
    min_insync_replicas: int


def topic_specs(topics: Topics, *, linkage: bool = True) -> list[TopicSpec]:
    """The request, dead-letter, alert and (``linkage``) hand-off topics as settings
    describe them.

    Only the request topic's partition count is required exactly (checkpoints and key
    routing depend on it); the dead-letter and alert topics are created with one
    partition, but more do no harm (nothing reads them by partition), so any count passes.
    """
    rf, isr = topics.replication_factor, topics.min_insync_replicas
    specs = [
        TopicSpec(topics.requests, topics.partitions, topics.partitions, rf, isr),
        TopicSpec(topics.dead_letter, 1, None, rf, isr),
        TopicSpec(topics.alerts, 1, None, rf, isr),
    ]
    if linkage:
        # partition p carries what the account stage read from request partition p
        specs.append(TopicSpec(topics.linkage_topic, topics.partitions, topics.partitions, rf, isr))
    return specs


def ensure_topics(bootstrap: str, topics: Topics, timeout_s: float = 15.0) -> list[str]:
    """Create the request, dead-letter and alert topics if missing, then check them all.

    Returns every topic name on the cluster; raises :class:`TopicMismatch` if an
    existing topic differs from settings (it is never altered). Retries until
    ``timeout_s`` because a broker that just opened its port may not answer yet.
    """
    specs = topic_specs(topics)

    def create(admin: KafkaAdminClient) -> list[str]:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                s.name,
                num_partitions=s.create_partitions,
                replication_factor=s.replication_factor,
                topic_configs={MIN_ISR: str(s.min_insync_replicas)},
            )
            for s in specs
            if s.name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                # Apache Kafka (KRaft) lists a new topic only once its metadata has
                # propagated: wait for that, or the check below finds it missing.
                admin.create_topics(missing, wait_for_metadata=True)
        _raise_on_problems(bootstrap, admin, specs, topics)
        return sorted(set(admin.list_topics()))

    return _with_admin(bootstrap, timeout_s, create)


def verify_topics(
    bootstrap: str, topics: Topics, timeout_s: float = 15.0, *, linkage: bool = True
) -> None:
    """Raise :class:`TopicMismatch` unless the cluster's topics are as ``topics`` says."""
    specs = topic_specs(topics, linkage=linkage)
    _with_admin(bootstrap, timeout_s, lambda a: _raise_on_problems(bootstrap, a, specs, topics))


def check_topics(settings: Settings, timeout_s: float = 15.0) -> None:
    """For the worker's start: :class:`TopicMismatch` unless the topics match settings.

    Creates nothing (creating is ``distillguard topics``' job): a missing topic is a
    mismatch too.
    """
    # the hand-off topic is needed by a split topology only: a single process runs
    # without it (deployments from before it existed keep starting)
    split = settings.worker.stage != "all"
    verify_topics(settings.kafka_bootstrap, settings.topics, timeout_s, linkage=split)


def topic_ids(bootstrap: str, names: list[str], timeout_s: float = 15.0) -> dict[str, str]:
    """The id (a UUID) of each existing topic among ``names``.

    A topic's id changes when it is deleted and created again (and, on Tansu's memory
    engine, when the broker restarts), while its name and partition count do not: a
    checkpoint that records the id it was taken on can tell it belongs to another topic.
    """

    def describe(admin: KafkaAdminClient) -> dict[str, str]:
        existing = set(admin.list_topics())
        wanted = [n for n in names if n in existing]
        described = admin.describe_topics(wanted) if wanted else []
        return {d["name"]: str(d["topic_id"]) for d in described if d.get("topic_id")}

    return _with_admin(bootstrap, timeout_s, describe)


def _with_admin(bootstrap: str, timeout_s: float, work: Callable[[KafkaAdminClient], T]) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="distillguard-admin")
            try:
                return work(admin)
            finally:
                admin.close()
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _raise_on_problems(
    bootstrap: str, admin: KafkaAdminClient, specs: list[TopicSpec], topics: Topics
) -> None:
    problems = topic_problems(admin, specs, topics)
    if problems:
        raise TopicMismatch(bootstrap, problems)


def topic_problems(admin: KafkaAdminClient, specs: list[TopicSpec], topics: Topics) -> list[str]:
    """Every way the cluster's topics differ from ``specs``, as sentences (empty: none)."""
    problems: list[str] = []
    if topics.min_insync_replicas > topics.replication_factor:
        problems.append(
            f"settings ask for min_insync_replicas {topics.min_insync_replicas} above"
            f" replication_factor {topics.replication_factor}: every acks=all write would fail"
        )
    existing = set(admin.list_topics())
    present = [s for s in specs if s.name in existing]
    problems += [
        f"topic {s.name!r} does not exist (create it with `distillguard topics`)"
        for s in specs
        if s.name not in existing
    ]
    if not present:
        return problems
    described = {d["name"]: d for d in admin.describe_topics([s.name for s in present])}
    for spec in present:
        problems += _layout_problems(spec, described.get(spec.name))
    problems += _min_isr_problems(admin, present)
    return problems


def _layout_problems(spec: TopicSpec, described: dict[str, Any] | None) -> list[str]:
    if described is None or described.get("error_code", 0) != 0:
        return [f"topic {spec.name!r} could not be described ({described!r:.200})"]
    partitions = described["partitions"]
    out = []
    if spec.partitions is not None and len(partitions) != spec.partitions:
        out.append(
            f"topic {spec.name!r} has {len(partitions)} partitions, settings say"
            f" {spec.partitions} (topics.partitions)"
        )
    factors = sorted({len(p["replica_nodes"]) for p in partitions})
    if factors != [spec.replication_factor]:
        out.append(
            f"topic {spec.name!r} has replication factor {'/'.join(map(str, factors))},"
            f" settings say {spec.replication_factor} (topics.replication_factor)"
        )
    return out


def _min_isr_problems(admin: KafkaAdminClient, specs: list[TopicSpec]) -> list[str]:
    if ApiKey.DescribeConfigs not in admin.api_versions():  # what the broker implements
        log.warning(
            "broker does not implement DescribeConfigs: min.insync.replicas not checked",
            extra={"topics": [s.name for s in specs]},
        )
        return []
    resources = [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs]
    # All configs, no key filter: Tansu drops the connection when asked for named keys.
    described = admin.describe_configs(resources, config_filter="all").get("topic", {})
    broker_value = None
    out = []
    for spec in specs:
        entry = described.get(spec.name, {}).get(MIN_ISR)
        value = entry.get("value") if entry else None
        if value is None:
            broker_value = broker_value or _broker_min_isr(admin)
            value = broker_value
        if value is None:
            log.warning(
                "broker reports no min.insync.replicas for the topic (Tansu reports only"
                " configs set at creation): not checked",
                extra={"topic": spec.name},
            )
            continue
        if int(value) != spec.min_insync_replicas:
            out.append(
                f"topic {spec.name!r} has min.insync.replicas {value}, settings say"
                f" {spec.min_insync_replicas} (topics.min_insync_replicas)"
            )
    return out


def _broker_min_isr(admin: KafkaAdminClient) -> str | None:
    """The brokers' default ``min.insync.replicas``, if any broker reports one."""
    for node in admin.describe_cluster().get("brokers", []):
        broker = str(node["broker_id"])
        with contextlib.suppress(KafkaError):
            resource = ConfigResource(ConfigResourceType.BROKER, broker)
            configs = admin.describe_configs([resource], config_filter="all").get("broker", {})
            entry = configs.get(broker, {}).get(MIN_ISR)
            if entry and entry.get("value") is not None:
                return str(entry["value"])
    return None
