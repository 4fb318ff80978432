"""Grid node rules from the original jgsl.config.xml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jgsl.core.region import Region
from jgsl.rules import ConfigError, load_rules, lua_pattern_to_regex, parse_rules

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
        ("a.b", ["axb"], ["ab"]),
    ],
)
def test_lua_patterns(pattern, matches, rejects):
    regex = re.compile(lua_pattern_to_regex(pattern))
    assert all(regex.search(s) for s in matches)
    assert not any(regex.search(s) for s in rejects)


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
