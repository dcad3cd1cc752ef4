"""Which members a cluster alert names: the extracting core, not the whole component.

A link says two accounts share something, and an operator can make its accounts share
things with honest customers (FRAUDAR's camouflage, turned around). Pure code: the
stage hands it the members, those passing the member test, the holders' keys and the
strong links.
"""

from __future__ import annotations

from collections.abc import Mapping

from distillguard.detectors.linkage.graph import Holder

#: key prefixes of the groups judged as one: campaign windows, fleets, clocks
_GROUP_KEYS = frozenset("zfq")
#: those only extracting accounts are given (fleets, clocks)
_GATED_GROUPS = frozenset("fq")
#: links to core members, and values shared with them, that name a member which
#: passes the member test (or one link more through a single value)
_NAMED_MIN_LINKS = 2
#: key kinds that are not a value two accounts share (onset buckets, centroid bands)
_NOT_SHARED_VALUES = frozenset("yc")


def implicated(
    members: set[str],
    passes: set[str],
    holders: Mapping[str, Holder],
    strong: Mapping[str, Mapping[str, float]],
    share: float,
) -> set[str]:
    """The members an extracting cluster implicates: its alert names them and they
    inherit its risk (``passes``: the members passing the member test; ``share``:
    ``extraction_share_min``). Not every member: a link says two accounts share something,
    and an operator can make its accounts share things with honest customers -- a
    carded card's owner, a proxy exit's subscriber (FRAUDAR's camouflage, turned
    around). With the whole component named, every honest account one borrowed card
    away, and its classmates through it, was alerted (``camouflage_links``: 131 of
    1,026 benign accounts on adaptive 101).

    Named, in the order each is decided:

    - members keyed by a group only extracting accounts join (a fleet's ``f:``, a
      clock's ``q:``; judged against chance and gated when keyed);
    - with them and the members passing the member test as the cluster's core, the
      holders of a campaign-window group (``z:``, judged against chance but not
      gated) in which ``extraction_share_min`` of the holders are core: a group is
      judged whole, as a cluster is, so the campaign's group is named and a course
      one borrowed card away is not;
    - members passing the member test that are linked to at least two core members
      through at least two shared values, or to three: a borrowed card is one
      link, a card carded twice is two links through one value, and a light
      customer's score crosses the member bar now and then; a hydra on a few cards
      links each member to many others through its one card.

    The others stay members, shown in the clusters view and counted in the alert's
    reasons.
    """
    groups: dict[str, list[str]] = {}
    for a in members:
        h = holders.get(a)
        if h is not None:
            for k in h.keys:
                if k[0] in _GROUP_KEYS:
                    groups.setdefault(k, []).append(a)
    named: set[str] = set()
    for k, held in groups.items():
        if k[0] in _GATED_GROUPS:
            named.update(held)
    core = passes | named
    for k, held in groups.items():
        if k[0] not in _GATED_GROUPS and sum(a in core for a in held) >= share * len(held):
            named.update(held)
    for a in passes - named:
        h = holders.get(a)
        if h is None:
            continue
        partners = 0
        shared: set[str] = set()
        for b in strong.get(a, ()):
            hb = holders.get(b) if b in core else None
            if hb is None:
                continue
            partners += 1
            shared.update(k for k in h.keys if k[0] not in _NOT_SHARED_VALUES and k in hb.keys)
            if partners >= _NAMED_MIN_LINKS and (
                len(shared) >= _NAMED_MIN_LINKS or partners > _NAMED_MIN_LINKS
            ):
                named.add(a)
                break
    return named
