"""Text from the network never reaches a log raw, and text fields refuse control and
format characters, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.logger import formatEvent

from jgsl.config import load_rules
from jgsl.core.gateway import GatewayCore
from jgsl.core.gridprocess import GridProcessCore
from jgsl.core.rules import CATCH_ALL, RuleSet
from jgsl.core.safetext import Logger, escape, message_text_problem, text_problem
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope
from tests.fakes import Captured

EVIL = "worlds/\x00Alpha\u202eWorld\x1b[2J/"


def test_escape_shows_control_format_and_separator_characters():
    assert escape("plain ünïcode text") == "plain ünïcode text"
    assert escape("a\x00b\u202ec\nd\u2028e") == "a\\x00b\\u202ec\\x0ad\\u2028e"
    assert escape("\U000e0001") == "\\U000e0001"


@pytest.mark.parametrize("text, problem", [
    ("fine", None),
    ("tab\there", "has a control character (U+0009)"),
    ("nul\x00", "has a control character (U+0000)"),
    ("\u202eright to left", "has a format character (U+202E)"),
    ("zero\u200bwidth", "has a format character (U+200B)"),
    ("non\u00a0breaking", None),  # a space, not a control
])
def test_text_problem_refuses_unicode_cc_and_cf(text, problem):
    assert text_problem(text) == problem


def test_the_field_is_named_even_nested():
    edit = pb.WorldEdit(kind="tree", params={"colour": "gr\u202eeen"})
    assert message_text_problem(edit) == "params has a format character (U+202E)"
    hello = pb.GridHello()
    hello.nodes.add().info.worldpath = "w\x00"
    assert message_text_problem(hello) == "nodes.info.worldpath has a control character (U+0000)"


def test_log_lines_carry_escaped_text():
    log = Logger(namespace="test")
    with Captured() as events:
        log.info("login of {user} at {world}", user="mallory\x00", world=EVIL)
    text = formatEvent(events[-1])
    assert text == ("login of mallory\\x00 at worlds/\\x00Alpha\\u202eWorld\\x1b[2J/")
    assert not any(c in text for c in "\x00\u202e\x1b")


def test_a_login_with_a_bad_world_path_is_refused_and_logged_escaped():
    gateway = GatewayCore("gateway.localhost", CATCH_ALL)
    with Captured() as events:
        (reply,) = gateway.receive(0, Envelope("mallory@x", "gateway.localhost",
                                               pb.Login(worldpath=EVIL, csk="c")))
    assert reply.message.refused
    assert reply.message.reason == "worldpath has a control character (U+0000)"
    lines = [formatEvent(e) for e in events]
    assert any("refused: worldpath has a control character" in line for line in lines)
    assert not any("\x00" in line or "\u202e" in line for line in lines)


def test_spawn_requests_for_worlds_no_rule_serves_make_no_node():
    rules = load_rules(Path(__file__).parent / "data" / "jgsl.config.xml").rules
    only_alpha = RuleSet(tuple(r for r in rules
                               if r.worldfilter and "Alpha" in r.worldfilter.pattern))
    grid = GridProcessCore("grid1.localhost", ["gateway.localhost"], rules=only_alpha)
    for worldpath, reason in (("worlds/Elsewhere/", "no rule serves world worlds/Elsewhere/"),
                              (EVIL, "worldpath has a control character (U+0000)")):
        (ready,) = grid.receive(0, Envelope("gateway.localhost", "grid1.localhost",
                                            pb.SpawnNode(request=1, worldpath=worldpath)))
        assert ready.message.refused and ready.message.reason == reason
    assert grid.nodes == {} and grid._loading == {}
    (ready,) = grid.receive(0, Envelope("gateway.localhost", "grid1.localhost", pb.SpawnNode(
        request=2, worldpath="worlds/MyWorlds/AlphaWorld/", gx=100, gy=100, gsize=200)))
    assert not ready.message.refused and list(grid.nodes) == [ready.message.id]
