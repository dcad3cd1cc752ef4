"""Which accounts form one cluster, under ids that survive merges, growth and splits.

Between re-validations clusters only grow: a new strong link merges two clusters (or
starts one), which is a union over a member map. Links that decay cannot be undone
that way, so the stage periodically recomputes the connected components from the
links still strong and calls :meth:`ClusterBook.rebuild`, which hands each new
component the id of the old cluster it overlaps most. An analyst following
``clu_12`` keeps seeing ``clu_12`` while it grows, when it absorbs a younger cluster,
and (for its larger part) when it splits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from distillguard.detectors.state import BookState


class ClusterBook:
    """Cluster membership with stable, creation-ordered ids.

    Examples
    --------
    >>> book = ClusterBook()
    >>> book.union("a", "b"), book.union("c", "d"), book.union("b", "c")
    ('clu_1', 'clu_2', 'clu_1')
    >>> sorted(book.members["clu_1"]), "clu_2" in book.members
    (['a', 'b', 'c', 'd'], False)
    >>> changed, dissolved = book.rebuild([("a", "b"), ("c", "d")])
    >>> book.cluster_of["a"], book.cluster_of["c"], sorted(changed), dissolved
    ('clu_1', 'clu_3', ['clu_1', 'clu_3'], [])
    """

    def __init__(self, prefix: str = "clu_") -> None:
        #: ids are ``prefix`` + a sequence number; workers that each own clusters give
        #: themselves distinct prefixes so their ids can never collide in the store
        self.prefix = prefix
        self.cluster_of: dict[str, str] = {}
        self.members: dict[str, set[str]] = {}
        self.seq = 0
        #: ids merged into an older cluster since the owner last emptied this list
        self.retired: list[str] = []

    def to_state(self) -> BookState:
        """Members sorted: the same book always saves to the same bytes."""
        return BookState(seq=self.seq, clusters={c: sorted(m) for c, m in self.members.items()})

    @classmethod
    def from_state(cls, state: BookState, prefix: str = "clu_") -> ClusterBook:
        """The book saved by :meth:`to_state`; ValueError for ids not of ``prefix``."""
        book = cls(prefix)
        book.seq = state.seq
        for cid, members in state.clusters.items():
            if not cid.startswith(prefix) or not cid[len(prefix) :].isdigit():
                raise ValueError(f"cluster id {cid!r} is not {prefix!r} + a number")
            book.members[cid] = set(members)
            for acct in members:
                book.cluster_of[acct] = cid
        return book

    def _new_id(self) -> str:
        self.seq += 1
        return f"{self.prefix}{self.seq}"

    def order(self, cid: str) -> int:
        """Creation order of an id (its sequence number)."""
        return int(cid[len(self.prefix) :])

    def union(self, a: str, b: str) -> str | None:
        """Put ``a`` and ``b`` in one cluster; the id that changed, or None if none did."""
        ca = self.cluster_of.get(a)
        cb = self.cluster_of.get(b)
        if ca is not None and ca == cb:
            return None
        if ca is None and cb is None:
            new = self._new_id()
            self.members[new] = {a, b}
            self.cluster_of[a] = self.cluster_of[b] = new
            return new
        if ca is None or cb is None:
            cid = ca if ca is not None else cb
            joiner = b if ca is not None else a
            assert cid is not None
            self.members[cid].add(joiner)
            self.cluster_of[joiner] = cid
            return cid
        keep, gone = (ca, cb) if self.order(ca) < self.order(cb) else (cb, ca)
        moved = self.members.pop(gone)
        self.retired.append(gone)
        for acct in moved:
            self.cluster_of[acct] = keep
        self.members[keep] |= moved
        return keep

    def remove(self, account: str) -> str | None:
        """Forget an account (evicted); its cluster id if that cluster changed."""
        cid = self.cluster_of.pop(account, None)
        if cid is None:
            return None
        members = self.members[cid]
        members.discard(account)
        if len(members) < 2:
            for acct in members:
                self.cluster_of.pop(acct, None)
            del self.members[cid]
        return cid

    def rebuild(self, edges: Iterable[tuple[str, str]]) -> tuple[set[str], list[str]]:
        """Recompute clusters as the components of ``edges``; (changed ids, dissolved ids).

        Each component keeps the old id it overlaps most (ties: the older id); an old
        id claimed by a larger overlap elsewhere leaves the component a new id.
        """
        adjacency: dict[str, list[str]] = {}
        for a, b in edges:
            adjacency.setdefault(a, []).append(b)
            adjacency.setdefault(b, []).append(a)
        components: list[set[str]] = []
        seen: set[str] = set()
        for start in adjacency:
            if start in seen:
                continue
            comp = {start}
            stack = [start]
            seen.add(start)
            while stack:
                for nxt in adjacency[stack.pop()]:
                    if nxt not in seen:
                        seen.add(nxt)
                        comp.add(nxt)
                        stack.append(nxt)
            components.append(comp)

        claims: list[tuple[int, int, int, str]] = []  # (-overlap, id order, component, id)
        for i, comp in enumerate(components):
            overlap = Counter(self.cluster_of[a] for a in comp if a in self.cluster_of)
            claims.extend((-n, self.order(cid), i, cid) for cid, n in overlap.items())
        claims.sort()
        id_of: dict[int, str] = {}
        taken: set[str] = set()
        for _, _, i, cid in claims:
            if i not in id_of and cid not in taken:
                id_of[i] = cid
                taken.add(cid)

        old_members = self.members
        self.cluster_of = {}
        self.members = {}
        changed: set[str] = set()
        for i, comp in enumerate(components):
            cid = id_of.get(i) or self._new_id()
            self.members[cid] = comp
            for acct in comp:
                self.cluster_of[acct] = cid
            if old_members.get(cid) != comp:
                changed.add(cid)
        dissolved = sorted(set(old_members) - set(self.members), key=self.order)
        return changed, dissolved
