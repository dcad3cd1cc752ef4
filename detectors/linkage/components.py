"""Connected components of a small graph, for the stage's periodic group finders.

Cohorts, campaign-window groups and analysts' label cases each join accounts into
groups on a cadence and need only the partition, not the union-find behind it; one
helper keeps the three from carrying their own copies.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

__all__ = ["components"]

T = TypeVar("T", bound=Hashable)


def components(nodes: Iterable[T], edges: Iterable[tuple[T, T]]) -> list[list[T]]:
    """The components of ``nodes`` joined by ``edges``, deterministic in input order.

    Each component lists its members in the order of ``nodes``; components come in the
    order of their first member. An edge to a node not in ``nodes`` adds it, after them.

    >>> components("abcde", [("a", "c"), ("d", "e")])
    [['a', 'c'], ['b'], ['d', 'e']]
    """
    parent: dict[T, T] = {n: n for n in nodes}

    def find(a: T) -> T:
        root = parent.setdefault(a, a)
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra
    groups: dict[T, list[T]] = {}
    for n in parent:
        groups.setdefault(find(n), []).append(n)
    return list(groups.values())
