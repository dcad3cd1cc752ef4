"""Cohorts: new accounts that start together behind one multi-network proxy pool.

A slow hydra (a few requests a day per account) shares almost nothing pairwise in its
first hours: one request each, so one address, one onset, one fingerprint. What it
does show is a *group* coincidence that benign traffic rarely produces: many accounts
never seen before make their first requests within minutes of each other, through a
small set of rare networks that several of them hop between, and that pool spans
several autonomous systems. Each part alone is common enough:

- new accounts arrive all the time (a few per five minutes in the simulator);
- a NAT, an office or a cloud tenant puts honest colleagues on the same rare /24s,
  and a lab class may well sign up in the same minute, but all through *one* ASN;
- one user on two networks (home and phone) spans two ASNs, alone.

A *cohort* needs all of them at once: at least ``cohort_min_size`` accounts whose
first sightings lie within ``cohort_window_s``, connected through rare /24 (/64)
networks they used, and spanning at least ``cohort_min_networks`` rare ASNs each used
by at least two members. Accounts are tied by networks, not by ASNs: two unrelated
tenants of one hosting provider share an ASN, a proxy pool's users share its /24s.
Only accounts that are new are examined, so the work is bounded by the arrival rate,
not by the population.

The function is pure: it reads holders and returns the groups; the stage turns each
group into a shared ``k:`` evidence key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from distillguard.detectors.linkage.components import components
from distillguard.detectors.linkage.graph import Holder


def find_cohorts(
    newcomers: Iterable[Holder],
    min_size: int,
    min_networks: int,
    is_rare: Callable[[str], bool] = lambda key: True,
) -> list[list[Holder]]:
    """Groups of new accounts tied by rare networks that span several ASNs.

    ``newcomers`` are the accounts first seen within the cohort window, oldest first;
    each group comes back oldest first, so its first member names it stably.
    ``is_rare(key)`` says whether a network value is rare enough to tie accounts (the
    stage judges it against the accounts seen so far).

    Examples
    --------
    Six new accounts hopping over a pool in two ASNs form a cohort; six new
    colleagues behind one campus NAT (one /24, one ASN) do not:

    >>> def holder(name, *keys):
    ...     h = Holder(name, 0.0)
    ...     h.keys = dict.fromkeys(keys, 0.0)
    ...     return h
    >>> pool = [holder(f"h{i}", "a:16276", "a:9009", f"n:31.44.{112 + i % 2}",
    ...                f"n:91.191.{215 + i % 3}") for i in range(6)]
    >>> campus = [holder(f"c{i}", "a:64500", "n:192.0.2") for i in range(6)]
    >>> [[h.id for h in group] for group in find_cohorts(pool + campus, 6, 2)]
    [['h0', 'h1', 'h2', 'h3', 'h4', 'h5']]
    """
    accounts = list(newcomers)
    if len(accounts) < min_size:
        return []
    first_holder: dict[str, int] = {}
    edges: list[tuple[int, int]] = []
    for i, h in enumerate(accounts):
        for key in h.keys:
            if key[0] != "n" or not is_rare(key):
                continue
            j = first_holder.setdefault(key, i)
            if j != i:
                edges.append((j, i))
    groups = components(range(len(accounts)), edges)
    out = []
    for members in groups:
        if len(members) < min_size:
            continue
        asn_users: dict[str, int] = {}
        for i in members:
            for key in accounts[i].keys:
                if key[0] == "a" and is_rare(key):
                    asn_users[key] = asn_users.get(key, 0) + 1
        if sum(1 for n in asn_users.values() if n >= 2) >= min_networks:
            out.append([accounts[i] for i in members])
    return out
