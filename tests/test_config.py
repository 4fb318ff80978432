"""Grid node rules from the original jgsl.config.xml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jgsl.config import ConfigError, load_config, load_rules, parse_rules
from jgsl.core.region import Region
from jgsl.lua.patterns import LuaPattern, PatternError

DATA = Path(__file__).parent / "data"
ALPHA = "worlds/MyWorlds/AlphaWorld/"
DOODLE = "worlds/MyWorlds/DoodleWorld/"


@pytest.fixture(scope="module")
def original():
    return load_rules(DATA / "jgsl.config.xml")


@pytest.mark.parametrize(
    "world, x, z, region, role",
    [
        (ALPHA, 20091, 20086, Region(ALPHA, 100, 100, 200.0), "guest"),
        # Inclusive bounds: x = 21000 is inside the rule and gets its own tile 105.
        (ALPHA, 21000, 21000, Region(ALPHA, 105, 105, 200.0), "guest"),
        (ALPHA, 19000, 19000, Region(ALPHA, 95, 95, 200.0), "guest"),
        (ALPHA, 19199.99, 19200, Region(ALPHA, 95, 96, 200.0), "guest"),
        # Just outside the sized rule: the catch-all whole-world node.
        (ALPHA, 21000.01, 20000, Region(ALPHA), "guest"),
        (ALPHA, 18999.99, 20000, Region(ALPHA), "guest"),
        (DOODLE, 20000, 20000, Region(DOODLE, 100, 100, 200.0), "friend"),
        ("worlds/Other/", 5, 5, Region("worlds/Other/"), "guest"),
        # The filter is anchored: a longer path is not AlphaWorld.
        (ALPHA + "sub/", 20000, 20000, Region(ALPHA + "sub/"), "guest"),
    ],
)
def test_original_rules(original, world, x, z, region, role):
    assert original.match(world, x, z) == (region, role)


def test_catch_all_role_is_guest():
    """As in the original, a world-wide node is a guest node whatever the rule says."""
    rules = parse_rules(b'<JGSL><GridServer><GridNodeRules><rule UserRole="friend"/>'
                        b"</GridNodeRules></GridServer></JGSL>", "t.xml")
    assert rules.match("w/", 1, 1) == (Region("w/"), "guest")


def test_no_rule_matches():
    rules = parse_rules(b'<JGSL><GridServer><GridNodeRules><rule worldfilter="^a$"/>'
                        b"</GridNodeRules></GridServer></JGSL>", "t.xml")
    assert rules.match("b", 0, 0) is None


@pytest.mark.parametrize(
    "pattern, matches, rejects",
    [
        ("^worlds/My%-World.-/$", ["worlds/My-World/", "worlds/My-Worldxx/"], ["worlds/MyWorld/"]),
        ("^[%w_]+$", ["abc_1"], ["a b"]),
        ("%d%d", ["x12"], ["x1"]),
        ("a.b", ["axb", "a\nb"], ["ab"]),  # Lua's . is any byte, a newline too
        ("%bxy", ["xAlphay", "..x(y)y"], ["yAlphax", "x"]),  # balanced x...y
        ("%f[%w]World", ["My World", "World"], ["MyWorld"]),  # frontier
        ("^worlds/MyWorlds/AlphaWorld/$", ["worlds/MyWorlds/AlphaWorld/"],
         ["worlds/MyWorlds/AlphaWorld/x", "xworlds/MyWorlds/AlphaWorld/"]),
        ("^worlds/MyWorlds/DoodleWorld/$", ["worlds/MyWorlds/DoodleWorld/"],
         ["worlds/MyWorlds/AlphaWorld/"]),
        (".*", ["", "anyone"], []),  # the original nidfilter
        ("^(%a+)/%1$", ["ab/ab"], ["ab/cd"]),  # back reference to a capture
        ("x^y", ["ax^yb"], ["xy"]),  # ^ not first is a plain ^
    ],
)
def test_lua_patterns_match_as_lua_does(pattern, matches, rejects):
    lua = LuaPattern(pattern)
    assert all(lua.search(s) for s in matches)
    assert not any(lua.search(s) for s in rejects)


@pytest.mark.parametrize("pattern, message", [
    ("abc%", "ends with '%'"), ("[a", "missing ']'"), ("%b", "missing arguments to '%b'"),
    ("^worlds/(", "unfinished capture"), ("%f", "missing '['"), ("x%1", "invalid capture"),
])
def test_malformed_lua_patterns_are_refused_with_luas_reason(pattern, message):
    with pytest.raises(PatternError, match=re.escape(message)):
        LuaPattern(pattern)


def test_the_original_configs_patterns_route_as_in_2009():
    """tests/data/jgsl.config.xml is the 2009 file, unchanged: its world filters are Lua
    patterns, and the empty rule catches every other world."""
    rules = load_config(DATA / "jgsl.config.xml").rules
    alpha = rules.match("worlds/MyWorlds/AlphaWorld/", 20091, 20086)
    doodle = rules.match("worlds/MyWorlds/DoodleWorld/", 20091, 20086)
    other = rules.match("worlds/MyWorlds/AlphaWorld/x", 20091, 20086)
    assert (alpha[0].gx, alpha[0].gy, alpha[0].size, alpha[1]) == (100, 100, 200.0, "guest")
    assert (doodle[0].size, doodle[1]) == (200.0, "friend")
    assert other[0].size is None  # the catch-all: one node for the whole world


@pytest.mark.parametrize(
    "rule, message",
    [
        ('<rule gridsize="abc"/>', r"t\.xml:3: rule 2: gridsize='abc' is not a number"),
        ('<rule gridsize="-5"/>', "gridsize must be positive"),
        ('<rule gridsize="10" fromx="1"/>', "missing fromy, tox, toy"),
        ('<rule UserRole="king"/>', "UserRole='king' is not one of"),
        ('<rule worldfilter="abc%"/>', "bad worldfilter"),
        ('<rule colour="red"/>', "unknown attribute"),
        ('<rule gridsize="10" fromx="5" fromy="0" tox="1" toy="9"/>', "empty bounds"),
    ],
)
def test_bad_rules_name_file_line_and_problem(rule, message):
    doc = ("<JGSL><GridServer><GridNodeRules>\n<rule/>\n" + rule +
           "\n</GridNodeRules></GridServer></JGSL>").encode()
    with pytest.raises(ConfigError, match=message):
        parse_rules(doc, "t.xml")


def test_malformed_xml_names_line():
    with pytest.raises(ConfigError, match=r"t\.xml:2: not well-formed"):
        parse_rules(b"<JGSL>\n<GridServer></JGSL>", "t.xml")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_rules(tmp_path / "nope.xml")


def test_shipped_config_loads():
    rules = load_rules(Path(__file__).parents[1] / "config" / "jgsl.config.xml")
    assert rules.match(ALPHA, 21000, 21000) == (Region(ALPHA, 105, 105, 200.0), "guest")


NEW_SECTIONS = b"""<JGSL><GridServer>
<GridNodeRules><rule/></GridNodeRules>
<NodeSettings sense_radius="25.5" max_reply_bytes="4096" agent_timeout="12" max_users="40"/>
<FieldRefreshRate AssetFile="7" rx="0"/>
</GridServer>
<StringMaps><AssetFile><string>custom/one.x</string><string> custom/two.x </string></AssetFile>
<anim><string>custom/dance.x</string></anim></StringMaps></JGSL>"""


def test_new_sections():
    from jgsl.config import parse_config

    config = parse_config(NEW_SECTIONS, "c.xml")
    assert config.node == {"sense_radius": 25.5, "max_reply_bytes": 4096, "agent_timeout": 12.0,
                           "max_users": 40}
    assert config.refresh == {"asset_file": 7, "rx": 0}
    assert config.strings == {"asset_file": ("custom/one.x", "custom/two.x"),
                              "anim": ("custom/dance.x",)}


def test_new_sections_reach_the_grid_and_the_maps():
    from jgsl.config import parse_config

    config = parse_config(NEW_SECTIONS, "c.xml")
    settings = config.grid_settings()
    assert (settings.sense_radius, settings.max_reply_bytes, settings.agent_timeout) == (
        25.5, 4096, 12.0)
    assert settings.refresh["asset_file"] == 7 and settings.refresh["rx"] == 0
    assert settings.refresh["y"] == 5  # the original rate where the file says nothing
    maps = config.string_maps()
    assert maps["asset_file"].id_of("custom/two.x") == 7  # after the 5 built-in assets
    assert maps["anim"].id_of("custom/dance.x") == 28
    assert parse_config(b"<JGSL/>", "x").grid_settings().sense_radius is None


@pytest.mark.parametrize(
    "xml, message",
    [
        (b'<JGSL><GridServer><NodeSettings sense_radius="far"/></GridServer></JGSL>',
         r"c\.xml:1: NodeSettings: sense_radius='far' is not a number"),
        (b'<JGSL><GridServer><NodeSettings max_users="0"/></GridServer></JGSL>',
         "max_users=0 is outside 1..100000"),
        (b'<JGSL><GridServer><NodeSettings max_reply_bytes="1.5"/></GridServer></JGSL>',
         "is not an integer"),
        (b'<JGSL><GridServer><NodeSettings colour="1"/></GridServer></JGSL>',
         "unknown attribute colour"),
        (b'<JGSL><GridServer><FieldRefreshRate wings="1"/></GridServer></JGSL>',
         "FieldRefreshRate: unknown attribute wings"),
        (b"<JGSL><StringMaps><Hats><string>x</string></Hats></StringMaps></JGSL>",
         "StringMaps has no map Hats"),
        (b"<JGSL><StringMaps><ccs><string> </string></ccs></StringMaps></JGSL>",
         "must have 1 to 256 characters"),
    ],
)
def test_bad_new_sections(xml, message):
    from jgsl.config import parse_config

    with pytest.raises(ConfigError, match=message):
        parse_config(xml, "c.xml")


def test_gateway_section_and_trusted_gateways():
    from jgsl.config import parse_config

    config = parse_config(
        b'<JGSL><GridServer><TrustedGateway jid="gw2.example"/>'
        b'<TrustedGateway jid="gw3.example"/></GridServer>'
        b'<GatewayServer nidfilter="^player%d+$" ServerVersion="2" ClientVersion="3" '
        b'MinClientVersion="2" recycle_delay="90" ticket_lifetime="30"/></JGSL>', "g.xml")
    assert config.trusted == ("gw2.example", "gw3.example")
    assert config.user_filter.search("player12") and not config.user_filter.search("bot")
    settings = config.gateway_settings()
    assert (settings.server_version, settings.client_version, settings.min_client_version,
            settings.recycle_delay, settings.ticket_lifetime) == (2, 3, 2, 90.0, 30.0)
    # The original file's <GatewayServer nidfilter=".*"> lets everybody in.
    original = load_config(DATA / "jgsl.config.xml")
    assert original.user_filter.search("anyone")


@pytest.mark.parametrize("xml, message", [
    (b'<JGSL><GatewayServer nidfilter="%"/></JGSL>', "bad nidfilter"),
    (b'<JGSL><GatewayServer ServerVersion="x"/></JGSL>', "ServerVersion='x' is not an integer"),
    (b'<JGSL><GatewayServer colour="red"/></JGSL>', "unknown attribute colour"),
    (b"<JGSL><GridServer><TrustedGateway/></GridServer></JGSL>", "needs exactly a jid"),
    (b'<JGSL><GridServer><GridNodeRules><rule overflow="-1"/></GridNodeRules></GridServer>'
     b"</JGSL>", "overflow='-1' is not 0..1000"),
])
def test_bad_gateway_settings(xml, message):
    from jgsl.config import parse_config

    with pytest.raises(ConfigError, match=message):
        parse_config(xml, "g.xml")
