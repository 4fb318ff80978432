"""Grid node rules: which region (and user role) serves a point of a world.

A rule applies to a world when its ``worldfilter`` matches the world path; a rule with a
``gridsize`` splits the world into square tiles inside its inclusive bounds, one without
gives one node for the whole world. Rules are tried in order. jgsl.config reads them from
the original 2009 ``jgsl.config.xml`` (docs/configuration.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from jgsl.core.region import Region


class Pattern(Protocol):
    """A world or user filter: the config's Lua pattern (jgsl.lua.patterns.LuaPattern), or
    anything with the same ``search`` (a compiled regular expression in tests)."""

    def search(self, text: str) -> object: ...


@dataclass(frozen=True, slots=True)
class Rule:
    line: int
    worldfilter: Pattern | None = None
    role: str = "guest"
    gridsize: float | None = None
    bounds: tuple[float, float, float, float] | None = None  # fromx, fromy, tox, toy (inclusive)
    #: Extra nodes (overflow instances) a full region may get; 0: a full node refuses.
    overflow: int = 0

    def serves_world(self, worldpath: str) -> bool:
        return self.worldfilter is None or bool(self.worldfilter.search(worldpath))

    def applies(self, worldpath: str, x: float, z: float) -> bool:
        if not self.serves_world(worldpath):
            return False
        if self.gridsize is None or self.bounds is None:
            return True
        fromx, fromy, tox, toy = self.bounds
        return fromx <= x <= tox and fromy <= z <= toy

    def region(self, worldpath: str, x: float, z: float) -> Region:
        if self.gridsize is None:
            return Region(worldpath)
        return Region.tile_at(worldpath, x, z, self.gridsize)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    source: str = "<built-in>"

    def rule_for(self, worldpath: str, x: float, z: float) -> Rule | None:
        """The first rule that applies to the point."""
        return next((rule for rule in self.rules if rule.applies(worldpath, x, z)), None)

    def match(self, worldpath: str, x: float, z: float) -> tuple[Region, str] | None:
        """The region and user role for a point, from the first applicable rule."""
        rule = self.rule_for(worldpath, x, z)
        if rule is None:
            return None
        # As in the original, a world-wide node (no gridsize) is always a guest node.
        role = rule.role if rule.gridsize is not None else "guest"
        return rule.region(worldpath, x, z), role

    def knows_world(self, worldpath: str) -> bool:
        return any(rule.serves_world(worldpath) for rule in self.rules)


#: One world-wide guest node per world: what an empty or missing rule list means.
CATCH_ALL = RuleSet((Rule(line=0),))
