"""Every archetype a scenario may name: the original ones and the adversary lab's.

``sim/benign.py`` and ``sim/attackers.py`` hold the first generation of archetypes;
``sim/honest_groups.py`` (benign groups that coordinate honestly) and
``sim/adversaries.py`` (attackers built to dodge the documented signals) add to them.
The scenario loader and the engine look names up here, so a new module of archetypes
is one line below, not an edit of the older modules.
"""

from __future__ import annotations

from distillguard.sim.traffic import Archetype


def benign_archetypes() -> dict[str, Archetype]:
    """Archetypes labelled ``benign``: background users and honest coordinated groups."""
    from distillguard.sim.benign import BENIGN
    from distillguard.sim.honest_groups import HONEST_GROUPS

    return {**BENIGN, **HONEST_GROUPS}


def attacker_archetypes() -> dict[str, Archetype]:
    """Archetypes labelled ``distiller``: the classic campaigns and the adaptive variants."""
    from distillguard.sim.adversaries import ADVERSARIES
    from distillguard.sim.attackers import ATTACKERS

    return {**ATTACKERS, **ADVERSARIES}


def archetype(name: str) -> Archetype:
    """The archetype called ``name``, benign or attacker."""
    found = benign_archetypes().get(name) or attacker_archetypes().get(name)
    if found is None:
        raise KeyError(name)
    return found
