"""A drained cluster's members' last requests, for the console's one-row-per-member timeline.

Coordination is easiest to see, and to check, as a picture: members of a fleet fire in
the same seconds, members of an honest team do not. The evidence table says *what*
the accounts share; the timeline shows *when* they act. Built at drain time (once per
changed cluster per checkpoint), never per event: per event, the account pipeline
only writes a time into a ring (``detectors/request_times.py``).

Bounded twice: each member contributes at most the ring's times, and at most ``cap``
members are shown (the most active; the others are counted in ``hidden``), so a
thousand-account hydra costs one record of ``cap`` rows.

Examples
--------
>>> from distillguard.records import Cluster
>>> kept = {"a": [30, 10], "b": [12, 31, 40], "c": []}
>>> t = cluster_timeline(
...     Cluster(cluster_id="clu_1", members=["a", "b", "c", "d"], risk=0.9, level="critical"),
...     lambda m: len(kept.get(m, ())), lambda m: kept[m], cap=2)
>>> [(m.account_id, m.times) for m in t.members], t.hidden
([('a', [10, 30]), ('b', [12, 31, 40])], 2)
"""

from __future__ import annotations

from collections.abc import Callable

from distillguard.records import Cluster, ClusterTimeline, MemberRequests

#: account -> requests it made while tracked (0: untracked or no times kept)
RequestsMade = Callable[[str], int]
#: account -> its kept request times (epoch seconds, any order)
RequestTimes = Callable[[str], list[int]]


def cluster_timeline(
    cluster: Cluster, requests_made: RequestsMade, request_times: RequestTimes, cap: int
) -> ClusterTimeline:
    """The cluster's timeline: the ``cap`` most active members, ordered by first request.

    Most active, because an analyst judging synchrony needs the rows with the most
    ticks; ties go to the smaller account id so the same state draws the same page.
    Rows are ordered by their first kept request, so accounts started together sit
    together and a synchronised fleet shows as aligned columns.
    """
    made = [(n, m) for m in cluster.members if (n := requests_made(m)) > 0]
    made.sort(key=lambda nm: (-nm[0], nm[1]))
    rows = []
    for n, m in made[: max(0, cap)]:
        times = sorted(request_times(m))
        if times:
            rows.append(MemberRequests(account_id=m, times=times, requests=n))
    rows.sort(key=lambda r: (r.times[0], r.account_id))
    return ClusterTimeline(
        cluster_id=cluster.cluster_id,
        members=rows,
        hidden=len(cluster.members) - len(rows),
        updated_at=cluster.updated_at,
    )
