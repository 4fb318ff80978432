"""``jgsl.config.xml``: the original 2009 format, read unchanged, plus optional new sections.

``/JGSL/GridServer/GridNodeRules/rule`` are the original rules. A rule applies to a world when
its ``worldfilter`` (a Lua pattern) matches the world path; a rule with ``gridsize`` splits the
world into square tiles inside its inclusive ``fromx..tox`` / ``fromy..toy`` (world z) bounds;
a rule without ``gridsize`` gives one node for the whole world. Rules are tried in file order.

New, optional: ``/JGSL/GridServer/NodeSettings`` (grid node tuning),
``/JGSL/GridServer/FieldRefreshRate`` (per-field refresh rates the original declared) and
``/JGSL/StringMaps/{AssetFile,ccs,anim}/string`` (strings appended to the built-in maps).
See docs/configuration.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from xml.parsers import expat

from jgsl.core.gateway import GatewaySettings
from jgsl.core.node import GridSettings
from jgsl.core.rules import CATCH_ALL, Rule, RuleSet
from jgsl.core.stringmaps import StringMap, default_maps
from jgsl.lua.patterns import LuaPattern, PatternError

ROLES = ("guest", "friend", "administrator")
_RULE_PATH = ("JGSL", "GridServer", "GridNodeRules", "rule")
_SETTINGS_PATH = ("JGSL", "GridServer", "NodeSettings")
_REFRESH_PATH = ("JGSL", "GridServer", "FieldRefreshRate")
_TRUSTED_PATH = ("JGSL", "GridServer", "TrustedGateway")
_XMPP_PATH = ("JGSL", "XMPP")
_ADMIN_PATH = ("JGSL", "Admin")
_XMPP_ATTRIBUTES = {"server", "domain", "secret", "secret_file"}
_GATEWAY_PATH = ("JGSL", "GatewayServer")
#: GatewayServer attribute -> (type, smallest, largest); nidfilter is a Lua pattern.
GATEWAY_SETTINGS: dict[str, tuple[type, float, float]] = {
    "ServerVersion": (int, 0, 1_000_000),
    "ClientVersion": (int, 0, 1_000_000),
    "MinClientVersion": (int, 0, 1_000_000),
    "recycle_delay": (float, 0, 86400 * 30),
    "ticket_lifetime": (float, 1, 86400),
    "grid_dead_after": (float, 1, 3600),
    "spawn_timeout": (float, 1, 3600),
}
#: NodeSettings attribute -> (type, smallest, largest).
NODE_SETTINGS: dict[str, tuple[type, float, float]] = {
    "sense_radius": (float, 0, 1e6),  # 0: every agent of the node
    "max_reply_bytes": (int, 1024, 48 * 1024),
    "agent_timeout": (float, 1, 86400),
    "sweep_interval": (float, 0.1, 3600),
    "hello_interval": (float, 0.1, 3600),
    "max_users": (int, 1, 100_000),
    "records": (int, 1, 256),
    "max_recover": (int, 0, 64),
    "refresh_seconds": (float, 0.01, 3600),
}
#: Original field names (FieldRefreshRate and StringMaps) -> AgentState field names.
FIELD_NAMES = {"AssetFile": "asset_file", "rx": "rx", "y": "y", "rz": "rz", "facing": "facing",
               "ccs": "ccs", "anim": "anim", "nickname": "nickname", "scaling": "scaling"}
_MAPPED_NAMES = ("AssetFile", "ccs", "anim")
_NUMERIC = ("gridsize", "fromx", "fromy", "tox", "toy")
_KNOWN = {"worldfilter", "UserRole", "overflow", *_NUMERIC}


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, line and problem."""


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
    overflow = 0
    if "overflow" in attrs:
        try:
            overflow = int(attrs["overflow"])
        except ValueError:
            overflow = -1
        if not 0 <= overflow <= 1000:
            raise ConfigError(f"{where}: overflow={attrs['overflow']!r} is not 0..1000")
    role = attrs.get("UserRole", "guest")
    if role not in ROLES:
        raise ConfigError(f"{where}: UserRole={role!r} is not one of {', '.join(ROLES)}")
    pattern = None
    if attrs.get("worldfilter"):
        try:
            pattern = LuaPattern(attrs["worldfilter"])
        except PatternError as e:
            raise ConfigError(f"{where}: bad worldfilter {attrs['worldfilter']!r}: {e}") from None
    return Rule(line=line, worldfilter=pattern, role=role, gridsize=size, bounds=bounds,
                overflow=overflow)


@dataclass(frozen=True)
class WorldConfig:
    """Everything ``jgsl.config.xml`` says: rules, node settings, refresh rates, strings."""

    rules: RuleSet
    node: dict[str, float | int] = field(default_factory=dict)
    refresh: dict[str, int] = field(default_factory=dict)
    strings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "<built-in>"
    gateway: dict[str, float | int] = field(default_factory=dict)
    #: Users (JID node parts) the gateway serves: the original nidfilter; None: everyone.
    user_filter: LuaPattern | None = None
    #: Gateways whose tickets grid processes accept (besides the one they register with).
    trusted: tuple[str, ...] = ()
    #: /JGSL/XMPP: server (endpoint string), domain, secret or secret_file.
    xmpp: dict[str, str] = field(default_factory=dict)
    #: /JGSL/Admin jid: who may shut a gateway or grid process down (ADMIN_SHUTDOWN).
    admins: tuple[str, ...] = ()

    def grid_settings(self, **overrides) -> GridSettings:
        """GridSettings from NodeSettings and FieldRefreshRate (and ``overrides``)."""
        names = {f.name for f in fields(GridSettings)}
        values = {name: value for name, value in self.node.items() if name in names}
        values["sense_radius"] = values.get("sense_radius") or None  # 0: every agent
        refresh = dict(GridSettings().refresh)
        refresh.update(self.refresh)
        return GridSettings(**{**values, "refresh": refresh, **overrides})

    def gateway_settings(self, role_hook=None, **overrides) -> GatewaySettings:
        """GatewaySettings from GatewayServer and NodeSettings (and ``overrides``)."""
        values = {name: self.gateway[attribute] for attribute, name in _GATEWAY_SETTINGS
                  if attribute in self.gateway}
        return GatewaySettings(max_users=int(self.node.get("max_users", 500)),
                               user_filter=self.user_filter, role_hook=role_hook,
                               interest_radius=self.node.get("sense_radius") or None,
                               **{**values, **overrides})

    def string_maps(self) -> dict[str, StringMap]:
        """The built-in string maps with the config's strings appended."""
        maps = default_maps()
        for name, strings in self.strings.items():
            maps[name].extend(strings)
        return maps


#: GatewayServer attributes and the GatewaySettings they set.
_GATEWAY_SETTINGS = (("ServerVersion", "server_version"), ("ClientVersion", "client_version"),
                     ("MinClientVersion", "min_client_version"),
                     ("recycle_delay", "recycle_delay"), ("ticket_lifetime", "ticket_lifetime"),
                     ("grid_dead_after", "grid_dead_after"), ("spawn_timeout", "spawn_timeout"))


def _numbers(attrs: dict[str, str], allowed: dict[str, tuple[type, float, float]],
             where: str) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for name, raw in attrs.items():
        if name not in allowed:
            raise ConfigError(f"{where}: unknown attribute {name} (known: "
                              + ", ".join(allowed) + ")")
        kind, low, high = allowed[name]
        try:
            value = kind(raw)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ConfigError(f"{where}: {name}={raw!r} is not {what}") from None
        if not low <= value <= high:
            raise ConfigError(f"{where}: {name}={raw} is outside {low:g}..{high:g}")
        out[name] = value
    return out


def parse_config(data: bytes, source: str) -> WorldConfig:
    """Parse a ``jgsl.config.xml`` document; raise L{ConfigError} naming file and line."""
    parser = expat.ParserCreate()
    stack: list[str] = []
    rules: list[Rule] = []
    node: dict[str, float | int] = {}
    refresh: dict[str, int] = {}
    strings: dict[str, list[str]] = {}
    text: list[str] = []
    gateway: dict[str, float | int] = {}
    trusted: list[str] = []
    admins: list[str] = []
    xmpp: dict[str, str] = {}
    user_filter: list[LuaPattern] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        stack.append(name)
        path = tuple(stack)
        line = parser.CurrentLineNumber
        if path == _RULE_PATH:
            where = f"{source}:{line}: rule {len(rules) + 1}"
            rules.append(_parse_rule(attrs, where, line))
        elif path == _SETTINGS_PATH:
            node.update(_numbers(attrs, NODE_SETTINGS, f"{source}:{line}: NodeSettings"))
        elif path == _GATEWAY_PATH:
            where = f"{source}:{line}: GatewayServer"
            rest = {k: v for k, v in attrs.items() if k != "nidfilter"}
            gateway.update(_numbers(rest, GATEWAY_SETTINGS, where))
            if attrs.get("nidfilter"):
                try:
                    user_filter.append(LuaPattern(attrs["nidfilter"]))
                except PatternError as e:
                    raise ConfigError(f"{where}: bad nidfilter {attrs['nidfilter']!r}: {e}") \
                        from None
        elif path == _XMPP_PATH:
            unknown = set(attrs) - _XMPP_ATTRIBUTES
            if unknown:
                raise ConfigError(f"{source}:{line}: XMPP: unknown attribute(s) "
                                  + ", ".join(sorted(unknown)))
            xmpp.update(attrs)
        elif path == _TRUSTED_PATH:
            if not attrs.get("jid") or set(attrs) != {"jid"}:
                raise ConfigError(f"{source}:{line}: TrustedGateway needs exactly a jid")
            trusted.append(attrs["jid"])
        elif path == _ADMIN_PATH:
            if not attrs.get("jid") or set(attrs) != {"jid"}:
                raise ConfigError(f"{source}:{line}: Admin needs exactly a jid")
            admins.append(attrs["jid"])
        elif path == _REFRESH_PATH:
            rates = _numbers(attrs, dict.fromkeys(FIELD_NAMES, (int, 0, 1_000_000)),
                             f"{source}:{line}: FieldRefreshRate")
            refresh.update({FIELD_NAMES[k]: int(v) for k, v in rates.items()})
        elif len(path) == 3 and path[:2] == ("JGSL", "StringMaps") \
                and path[2] not in _MAPPED_NAMES:
            raise ConfigError(f"{source}:{line}: StringMaps has no map {path[2]} (known: "
                              + ", ".join(_MAPPED_NAMES) + ")")
        text.clear()

    def end(name: str) -> None:
        path = tuple(stack)
        if len(path) == 4 and path[:2] == ("JGSL", "StringMaps") and name == "string":
            value = "".join(text).strip()
            if not value or len(value) > 256:
                raise ConfigError(f"{source}:{parser.CurrentLineNumber}: a {path[2]} string "
                                  "must have 1 to 256 characters")
            strings.setdefault(FIELD_NAMES[path[2]], []).append(value)
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text.append
    try:
        parser.Parse(data, True)
    except expat.ExpatError as e:
        raise ConfigError(f"{source}:{e.lineno}: not well-formed XML: "
                          f"{expat.ErrorString(e.code)}") from None
    ruleset = RuleSet(tuple(rules), source) if rules else RuleSet(CATCH_ALL.rules, source)
    return WorldConfig(ruleset, node, refresh, {k: tuple(v) for k, v in strings.items()}, source,
                       gateway, user_filter[0] if user_filter else None, tuple(trusted), xmpp,
                       tuple(admins))


def parse_rules(data: bytes, source: str) -> RuleSet:
    return parse_config(data, source).rules


def read_config_file(path: str | Path) -> bytes:
    """A config file's bytes, or a L{ConfigError} naming the file and why it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None


def load_config(path: str | Path) -> WorldConfig:
    return parse_config(read_config_file(path), str(path))


def load_rules(path: str | Path) -> RuleSet:
    return load_config(path).rules
