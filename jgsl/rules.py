"""Grid node rules from ``jgsl.config.xml`` (the original 2009 format, read unchanged).

Only ``/JGSL/GridServer/GridNodeRules/rule`` is read. A rule applies to a world when its
``worldfilter`` (a Lua pattern) matches the world path; a rule with ``gridsize`` splits the
world into square tiles inside its inclusive ``fromx..tox`` / ``fromy..toy`` (world z) bounds;
a rule without ``gridsize`` gives one node for the whole world. Rules are tried in file order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from xml.parsers import expat

from jgsl.core.region import Region

ROLES = ("guest", "friend", "administrator")
_RULE_PATH = ("JGSL", "GridServer", "GridNodeRules", "rule")
_NUMERIC = ("gridsize", "fromx", "fromy", "tox", "toy")
_KNOWN = {"worldfilter", "UserRole", *_NUMERIC}


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, line and problem."""


def lua_pattern_to_regex(pattern: str) -> str:
    """Translate a Lua string pattern (as used by ``worldfilter``) to a Python regex."""
    classes = {
        "a": r"[A-Za-z]", "d": r"\d", "l": r"[a-z]", "s": r"\s", "u": r"[A-Z]",
        "w": r"[A-Za-z0-9]", "x": r"[0-9A-Fa-f]", "p": r"[!-/:-@\[-`{-~]", "c": r"[\x00-\x1f]",
        "A": r"[^A-Za-z]", "D": r"\D", "L": r"[^a-z]", "S": r"\S", "U": r"[^A-Z]",
        "W": r"[^A-Za-z0-9]", "X": r"[^0-9A-Fa-f]", "P": r"[^!-/:-@\[-`{-~]",
    }
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "%":
            if i + 1 >= n:
                raise ValueError("pattern ends with '%'")
            nxt = pattern[i + 1]
            out.append(classes.get(nxt, re.escape(nxt)))
            i += 2
            continue
        if c == "[":
            j = i + 1
            part = ["["]
            if j < n and pattern[j] == "^":
                part.append("^")
                j += 1
            first = True
            while j < n and (pattern[j] != "]" or first):
                first = False
                if pattern[j] == "%" and j + 1 < n:
                    cls = classes.get(pattern[j + 1])
                    part.append(cls[1:-1] if cls and cls.startswith("[") else
                                cls if cls else re.escape(pattern[j + 1]))
                    j += 2
                    continue
                part.append("\\" + pattern[j] if pattern[j] in "\\[]" else pattern[j])
                j += 1
            if j >= n:
                raise ValueError("unclosed '['")
            out.append("".join(part) + "]")
            i = j + 1
            continue
        if c == "-":
            out.append("*?")
        elif c in "^$.*+?":
            out.append(c if (c != "^" or i == 0) and (c != "$" or i == n - 1) else re.escape(c))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Rule:
    line: int
    worldfilter: re.Pattern[str] | None = None
    role: str = "guest"
    gridsize: float | None = None
    bounds: tuple[float, float, float, float] | None = None  # fromx, fromy, tox, toy (inclusive)

    def applies(self, worldpath: str, x: float, z: float) -> bool:
        if self.worldfilter is not None and not self.worldfilter.search(worldpath):
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

    def match(self, worldpath: str, x: float, z: float) -> tuple[Region, str] | None:
        """The region and user role for a point, from the first applicable rule."""
        for rule in self.rules:
            if rule.applies(worldpath, x, z):
                # As in the original, a world-wide node (no gridsize) is always a guest node.
                role = rule.role if rule.gridsize is not None else "guest"
                return rule.region(worldpath, x, z), role
        return None


#: One world-wide guest node per world: what an empty or missing rule list means.
CATCH_ALL = RuleSet((Rule(line=0),))


def _parse_rule(attrs: dict[str, str], where: str, line: int) -> Rule:
    unknown = set(attrs) - _KNOWN
    if unknown:
        raise ConfigError(f"{where}: unknown attribute(s) {', '.join(sorted(unknown))}")
    numbers: dict[str, float] = {}
    for name in _NUMERIC:
        if name in attrs:
            try:
                numbers[name] = float(attrs[name])
            except ValueError:
                raise ConfigError(f"{where}: {name}={attrs[name]!r} is not a number") from None
    size = numbers.get("gridsize")
    if size is not None and not (0 < size < 1e7):
        raise ConfigError(f"{where}: gridsize must be positive, got {attrs['gridsize']}")
    bounds = None
    present = [n for n in ("fromx", "fromy", "tox", "toy") if n in numbers]
    if present:
        if len(present) != 4:
            missing = sorted({"fromx", "fromy", "tox", "toy"} - set(present))
            raise ConfigError(f"{where}: bounds need fromx, fromy, tox and toy; missing "
                              + ", ".join(missing))
        bounds = (numbers["fromx"], numbers["fromy"], numbers["tox"], numbers["toy"])
        if bounds[0] > bounds[2] or bounds[1] > bounds[3]:
            raise ConfigError(f"{where}: empty bounds (from > to)")
    role = attrs.get("UserRole", "guest")
    if role not in ROLES:
        raise ConfigError(f"{where}: UserRole={role!r} is not one of {', '.join(ROLES)}")
    pattern = None
    if attrs.get("worldfilter"):
        try:
            pattern = re.compile(lua_pattern_to_regex(attrs["worldfilter"]))
        except (ValueError, re.error) as e:
            raise ConfigError(f"{where}: bad worldfilter {attrs['worldfilter']!r}: {e}") from None
    return Rule(line=line, worldfilter=pattern, role=role, gridsize=size, bounds=bounds)


def parse_rules(data: bytes, source: str) -> RuleSet:
    """Parse the rules of a ``jgsl.config.xml`` document; raise L{ConfigError} on problems."""
    parser = expat.ParserCreate()
    stack: list[str] = []
    rules: list[Rule] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        stack.append(name)
        if tuple(stack) == _RULE_PATH:
            line = parser.CurrentLineNumber
            where = f"{source}:{line}: rule {len(rules) + 1}"
            rules.append(_parse_rule(attrs, where, line))

    def end(name: str) -> None:
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as e:
        raise ConfigError(f"{source}:{e.lineno}: not well-formed XML: "
                          f"{expat.ErrorString(e.code)}") from None
    return RuleSet(tuple(rules), source) if rules else RuleSet(CATCH_ALL.rules, source)


def load_rules(path: str | Path) -> RuleSet:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    return parse_rules(data, str(path))
