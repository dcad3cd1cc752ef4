"""Group joins that finish between two polls are applied, not lost (kafka-python 3.0.12).

kafka-python runs JoinGroup + SyncGroup as one task on its IO thread and awaits it
only while the caller is inside ``poll()``. When a poll's time runs out first, the
task goes on and completes with nobody waiting. The next poll then mishandles it:

- if a rejoin is still wanted (a first join, or the broker asked for one), the loop
  sees a *finished* task, treats it as stale and sends a new JoinGroup, throwing the
  assignment away. With short polls and a slow JoinGroup (Tansu holds the second
  one ~3 s) the member never completes a join at all;
- if the rejoin was asked for by a metadata change (the leader saw the topic's
  partitions appear), performing the assignment already cleared that reason, so the
  next poll does not look at the group at all: the finished assignment is never
  applied, the heartbeat stays switched off from the join, the broker expels the
  member after its session timeout, and the member keeps its old assignment for good.
  On a fresh group on Apache Kafka that old assignment is the empty one made before
  the topic's metadata arrived: a worker that sat idle with records waiting (seen in
  CI, reproduced in ``tests/test_consumer_group.py``).

The fix is local to one consumer: while a join task exists the member still needs to
(re)join, and a finished task is applied the way kafka-python applies one it awaited
(member stable, heartbeat on, ``on_partitions_assigned``). It reaches into
kafka-python's coordinator, hence the pinned ``kafka-python`` minor version; the test
above fails if an upgrade changes the behaviour under it.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer
from kafka.structs import MemberState

__all__ = ["apply_joins_finished_between_polls"]


def apply_joins_finished_between_polls(consumer: KafkaConsumer) -> None:
    """Patch ``consumer``'s group coordinator (this instance only)."""
    coordinator: Any = consumer._coordinator
    join_group = coordinator.join_group_async
    need_rejoin = coordinator.need_rejoin

    def still_joining() -> bool:
        return coordinator._join_task is not None or bool(need_rejoin())

    async def join_group_applying_finished(timeout_ms: float | None = None) -> bool:
        task = coordinator._join_task
        if task is not None and task.is_done:
            coordinator._join_task = None
            if task.succeeded():
                with coordinator._lock:
                    coordinator.rejoining = False
                    coordinator.rejoin_needed = False
                    coordinator.state = MemberState.STABLE
                    coordinator._enable_heartbeat()
                generation = coordinator._generation
                await coordinator._on_join_complete_async(
                    generation.generation_id,
                    generation.member_id,
                    generation.protocol,
                    task.value,
                )
            # A failed attempt already applied its side effects (new member id, rejoin
            # requested, coordinator marked dead); kafka-python's loop retries it.
        return bool(await join_group(timeout_ms=timeout_ms))

    coordinator.need_rejoin = still_joining
    coordinator.join_group_async = join_group_applying_finished
