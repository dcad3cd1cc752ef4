"""Topic management: create the topics distillguard needs, idempotently."""

from __future__ import annotations

import contextlib
import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from distillguard.settings import Topics


def ensure_topics(bootstrap: str, topics: Topics, timeout_s: float = 15.0) -> list[str]:
    """Create the request, dead-letter and alert topics if missing; return all topic names.

    Retries until ``timeout_s`` because a broker that just opened its port may not
    answer metadata requests yet.
    """
    wanted = {
        topics.requests: topics.partitions,
        topics.dead_letter: 1,
        topics.alerts: 1,
    }
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="distillguard-admin")
            try:
                existing = set(admin.list_topics())
                missing = [
                    NewTopic(name, num_partitions=parts, replication_factor=1)
                    for name, parts in wanted.items()
                    if name not in existing
                ]
                if missing:
                    with contextlib.suppress(TopicAlreadyExistsError):
                        admin.create_topics(missing)
                return sorted(set(admin.list_topics()))
            finally:
                admin.close()
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
