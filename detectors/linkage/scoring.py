"""How risky a cluster is, and how its evidence is shown to an analyst.

A cluster's risk blends what the coordination itself shows with what its members
show on their own:

- coordination: the mean weight of the strong links inside the cluster, relative to
  twice the link threshold (a cluster held together by links just at threshold is
  weaker evidence than one whose members share a card, a proxy pool and a template);
- size: two or three linked accounts may be a family or a small team; six or more
  sharing rare evidence are not;
- volume: the members' requests together, on a log scale;
- members' own risk (from the account detectors, when composed with them): the mean
  of the three highest, so one flagged member lifts the whole cluster.

The weights are fixed here rather than configured: they define what the risk scale
means, and ``alert_risk`` in the config is the one knob that decides.
"""

from __future__ import annotations

import math

from distillguard.detectors.linkage.config import KIND_OF_PREFIX
from distillguard.records import Evidence, Reason

_BASE = 0.4
_W_COORD = 0.25
_W_SIZE = 0.15
_W_VOLUME = 0.05
_W_MEMBERS = 0.15


def cluster_risk(
    mean_link: float, threshold: float, size: int, events: int, member_risk: float
) -> float:
    """Risk in [0, 1] of a cluster.

    >>> round(cluster_risk(1.5, 1.0, 12, 300, 0.0), 3)
    0.768
    >>> round(cluster_risk(1.0, 1.0, 2, 10, 0.0), 3)
    0.568
    """
    coord = min(1.0, mean_link / (2.0 * threshold))
    size_f = min(1.0, (size - 1) / 5.0)
    volume = min(1.0, math.log10(1 + events) / 4.0)
    risk = _BASE + _W_COORD * coord + _W_SIZE * size_f + _W_VOLUME * volume
    return min(1.0, risk + _W_MEMBERS * max(0.0, min(1.0, member_risk)))


def describe(key: str) -> tuple[str, str]:
    """(kind, human-readable value) of an evidence key.

    >>> describe("n:203.0.113"), describe("y:5")
    (('net', '203.0.113.0/24'), ('sync', 'bursts starting in time bucket 5'))
    """
    kind = KIND_OF_PREFIX.get(key[0], "other")
    value = key[2:]
    if kind == "net" and "/" not in value:
        value += ".0/24"
    elif kind == "template":
        value = f"template band {value}"
    elif kind == "system_prompt":
        value = f"system prompt crc {value}"
    elif kind == "sync" and value.isdigit():
        value = f"bursts starting in time bucket {value}"
    elif kind == "asn":
        value = f"AS{value}"
    elif kind == "cohort":
        value = f"first seen within minutes of {value}, over one multi-ASN network pool"
    return kind, value


def evidence_items(
    shared: list[tuple[str, float, list[str]]], items: int, accounts: int
) -> list[Evidence]:
    """The strongest shared values, one :class:`Evidence` each, strongest first.

    Template bands of one template always travel together; they are listed once per
    group of holders so an alert does not show eight near-identical lines.
    """
    ranked = sorted(shared, key=lambda s: (-s[1] * len(s[2]), s[0]))
    out: list[Evidence] = []
    seen_template_groups: set[frozenset[str]] = set()
    for key, weight, holders in ranked:
        if weight <= 0:
            continue
        if key[0] == "t":
            group = frozenset(holders)
            if group in seen_template_groups:
                continue
            seen_template_groups.add(group)
        kind, value = describe(key)
        out.append(
            Evidence(
                kind=kind, value=value, weight=round(weight, 4), accounts=sorted(holders)[:accounts]
            )
        )
        if len(out) >= items:
            break
    return out


def reasons(
    size: int, mean_link: float, evidence: list[Evidence], member_risk: float
) -> list[Reason]:
    """Reasons of a cluster alert: size, coordination, and each kind of shared evidence."""
    out = [
        Reason(signal="cluster_size", value=float(size)),
        Reason(signal="cluster_link_strength", value=round(mean_link, 4)),
    ]
    by_kind: dict[str, float] = {}
    for ev in evidence:
        by_kind[ev.kind] = max(by_kind.get(ev.kind, 0.0), ev.weight)
    out.extend(
        Reason(signal=f"shared_{kind}", value=round(w, 4))
        for kind, w in sorted(by_kind.items(), key=lambda kv: -kv[1])
    )
    if member_risk > 0:
        out.append(Reason(signal="member_risk", value=round(member_risk, 4)))
    return out
