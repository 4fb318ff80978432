"""Region scripts on a grid process (sans-IO): NPCs, hooks, outbox, messages, reload, keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from jgsl.core.effects import LoadKey, NodeLogs, SaveKey
from jgsl.core.gridprocess import GridProcessCore
from jgsl.core.node import GridSettings
from jgsl.lua.regions import LoginScript, ScriptLibrary
from jgsl.lua.sandbox import Limits
from jgsl.wire import game_pb2
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope
from jgsl.wire.messages import readable
from tests.fakes import ALPHA, FULL, GRID, GW, rows, ticket

ALICE, BOB = "alice@emu.localhost", "bob@emu.localhost"  # agents are bare JIDs
GUARD = "guard.1@grid1.localhost"
LIMITS = Limits(memory=8 << 20, instructions=200_000)

GUARD_SCRIPT = """
state = state or { greeted = 0 }
function OnInit(node)
  npc.spawn('guard', { x = node.x + 90, y = 36, z = node.z + 80, nickname = 'Guard' })
end
function OnAgentEnter(a)
  state.greeted = state.greeted + 1
  npc.say('guard', a.jid, 'hi ' .. a.jid)
end
function OnAgentLeave(a) log('left', a.jid) end
function OnMessage(from, msg) npc.say('guard', from, 'echo ' .. msg.body.text) end
function OnTick(now) npc.move('guard', { x = 20090 + now }) end
"""


def library(root: Path, files: dict[str, str]) -> ScriptLibrary:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ScriptLibrary(root, LIMITS)


def spawn(core: GridProcessCore, gx: int = 100, request: int = 5) -> list[Envelope]:
    return core.receive(0, Envelope(GW + "/r", GRID, pb.SpawnNode(
        request=request, worldpath=ALPHA, gx=gx, gy=100, gsize=200, role="guest")))


def make(tmp_path, script: str = GUARD_SCRIPT, persist: bool = False, **files):
    lib = library(tmp_path, {"regions/AlphaWorld.lua": script,
                             **{f"{k}.lua": v for k, v in files.items()}})
    keys = iter(f"key{i}" for i in range(1, 100))
    core = GridProcessCore(GRID, [GW], GridSettings(refresh={}), key_factory=lambda: next(keys),
                           persist=persist, scripts=lib)
    out = spawn(core)
    if persist:  # the node's stored logs load first
        (load,) = core.effects
        out = core.effect_done(0, load, NodeLogs())
    assert isinstance(out[0].message, pb.NodeReady) and out[0].message.id == 1
    return core


def update(core, now, sender, st=0, ct=1, data=FULL, node=1, key="key1"):
    msg = pb.NormalUpdate(sk=key, id=node, st=st, ct=ct,
                          ticket=ticket(sender, node_id=node, node_key=key))
    if data is not None:
        msg.agent.data.CopyFrom(data)
    return core.receive(now, Envelope(sender, GRID, msg))


def reply_of(out):
    (reply,) = [readable(e.message) for e in out
                if isinstance(e.message, pb.NormalUpdateReplyOut)]
    return reply


def said(out, to=None):
    return [(e.recipient, getattr(e.message, "from"), game_pb2.Say.FromString(e.message.body).text)
            for e in out if isinstance(e.message, pb.ServerGameMessage)
            and (to is None or e.recipient == to)]


def test_npc_is_seen_by_clients_like_any_agent(tmp_path):
    core = make(tmp_path)
    out = update(core, 1, ALICE)
    (row,) = rows(reply_of(out))
    assert row[2]["name"] == GUARD and row[2]["nickname"] == "Guard"
    assert (row[2]["rx"], row[2]["y"], row[2]["rz"]) == (9000, 3600, 8000)
    # the guard moves every tick: the next reply carries it as a delta
    core.tick(2)
    reply = reply_of(update(core, 3, ALICE, st=reply_of(out).st, ct=2, data=None))
    ((_, delta, values),) = rows(reply)
    assert delta and values == {"rx": 9200 - 9000}


def test_npc_is_not_a_player(tmp_path):
    core = make(tmp_path, persist=True)
    node = core.nodes[1]
    assert node.active_agents == 0 and GUARD in node.agents
    assert node.expire(1000) == [] and GUARD in node.agents
    update(core, 1, ALICE)
    core.effects.clear()
    closing = core.stop(2)
    assert [e.recipient for e in closing if isinstance(e.message, pb.Closing)] == [ALICE]
    assert [e.user for e in core.effects if hasattr(e, "user")] == ["alice@emu.localhost"]


def test_enter_hook_greets_and_leave_hook_runs(tmp_path, logged):  # noqa: F811
    core = make(tmp_path)
    out = update(core, 1, ALICE)
    assert said(out) == [(ALICE, GUARD, f"hi {ALICE}")]
    assert said(update(core, 2, ALICE, st=reply_of(out).st, ct=2, data=None)) == []  # once
    core.receive(3, Envelope(ALICE, GRID, pb.Logout(sk="key1", id=1)))
    assert f"left {ALICE}" in logged.text()


def test_game_messages_reach_on_message_and_bad_ones_are_dropped(tmp_path, logged):  # noqa: F811
    core = make(tmp_path)
    update(core, 1, ALICE)
    body = game_pb2.Say(text="hello").SerializeToString()
    out = core.receive(2, Envelope(ALICE, GRID, pb.GameMessage(sk="key1", id=1, type="Say",
                                                                 body=body)))
    assert said(out) == [(ALICE, GUARD, "echo hello")]
    for bad in (pb.GameMessage(sk="key1", id=1, type="Nope", body=body),
                pb.GameMessage(sk="key1", id=1, type="Say", body=b"\xff\xff"),
                pb.GameMessage(sk="wrong", id=1, type="Say", body=body),
                pb.GameMessage(sk="key1", id=1, type="Say",
                               body=game_pb2.Say(text="\u202eolleh").SerializeToString())):
        assert core.receive(3, Envelope(ALICE, GRID, bad)) == []
    assert core.receive(3, Envelope(BOB, GRID, pb.GameMessage(sk="key1", id=1, type="Say",
                                                              body=body))) == []  # not joined
    assert "game message 'Nope'" in logged.text() and "not an agent there" in logged.text()
    assert "text has a format character (U+202E)" in logged.text()


def test_outbox_env_set_field_and_kick(tmp_path):
    core = make(tmp_path, """
        function OnMessage(from, msg)
          if msg.body.text == 'rain' then broadcastEnv('weather', { rain = 'heavy' }) end
          if msg.body.text == 'dance' then setField(from, 'anim', 'Dance') end
          if msg.body.text == 'bye' then kick(from, 'enough') end
        end""")
    first = reply_of(update(core, 1, ALICE))
    bob = reply_of(update(core, 1, BOB))

    def say(text):
        return core.receive(2, Envelope(ALICE, GRID, pb.GameMessage(
            sk="key1", id=1, type="Say", body=game_pb2.Say(text=text).SerializeToString())))

    say("rain")
    say("dance")
    reply = reply_of(update(core, 3, BOB, st=bob.st, ct=2, data=None))
    assert [(e.kind, dict(e.params), e.author) for e in reply.env] == [
        ("weather", {"rain": "heavy"}, "script:regions.AlphaWorld")]
    assert rows(reply)[0][2] == {"anim": "Dance"}
    out = say("bye")
    assert [(e.recipient, e.message.reason) for e in out] == [(ALICE, "enough")]
    assert ALICE not in core.nodes[1].agents
    assert first.st  # alice had joined


def test_script_error_is_logged_and_the_node_goes_on(tmp_path, logged):  # noqa: F811
    core = make(tmp_path, "function OnTick(now) error('tick broke') end")
    core.tick(1)
    assert "tick broke" in logged.text() and "stack traceback" in logged.text()
    assert reply_of(update(core, 2, ALICE)).st


def test_a_node_whose_script_does_not_compile_still_serves(tmp_path, logged):  # noqa: F811
    core = make(tmp_path, "function OnTick(now")
    assert "does not load" in logged.text()
    assert reply_of(update(core, 1, ALICE)).st


def test_wait_and_signals_ride_the_node_tick(tmp_path):
    core = make(tmp_path, """
        function OnInit(node)
          wait(5)
          npc.spawn('late', { x = node.x + 1, y = 0, z = node.z + 1 })
          waitForSignal('go')
          npc.remove('late')
        end
        function OnMessage(from, msg) sendSignal('go') end""")
    node = core.nodes[1]
    core.tick(4.9)
    assert "late.1@grid1.localhost" not in node.agents
    core.tick(5)
    assert "late.1@grid1.localhost" in node.agents
    update(core, 6, ALICE)
    core.receive(7, Envelope(ALICE, GRID, pb.GameMessage(
        sk="key1", id=1, type="Say", body=game_pb2.Say(text="x").SerializeToString())))
    assert "late.1@grid1.localhost" not in node.agents


def test_script_keys_go_through_the_store(tmp_path):
    core = make(tmp_path, """
        function OnInit() local n = loadKey('visits') or 0 storeKey('visits', n + 1) end""",
                persist=True)
    loads = [e for e in core.effects if isinstance(e, LoadKey)]
    assert loads == [LoadKey(f"{ALPHA}|regions.AlphaWorld", "visits", 1)]
    core.effects.clear()
    core.effect_done(1, loads[0], "41")
    assert [e for e in core.effects if isinstance(e, SaveKey)] == [
        SaveKey(f"{ALPHA}|regions.AlphaWorld", "visits", "42")]


def test_script_keys_without_a_store_live_for_the_session(tmp_path):
    core = make(tmp_path, """
        function OnInit() storeKey('k', { 1, 2 }) end
        function OnTick()
          local v = loadKey('k') npc.spawn('n' .. #v, { x = 0, y = 0, z = 0 })
        end""")
    core.tick(1)
    assert "n2.1@grid1.localhost" in core.nodes[1].agents and core.effects == []


# -- reload --------------------------------------------------------------------------------


def edit(tmp_path, text: str, name: str = "regions/AlphaWorld.lua") -> None:
    (tmp_path / name).write_text(text)


def test_reload_with_a_good_change_keeps_agents_and_state(tmp_path):
    core = make(tmp_path)
    out = update(core, 1, ALICE)
    edit(tmp_path, GUARD_SCRIPT.replace("'hi '", "'welcome '") + """
        function OnReload(old) state = old state.reloaded = true end""")
    errors, count, _ = core.reload(2)
    assert (errors, count) == ([], 1)
    assert set(core.nodes[1].agents) == {ALICE, GUARD}
    script = core.logic[1].script
    assert script.state() == {"greeted": 1, "reloaded": True}
    out = update(core, 3, BOB)
    assert said(out) == [(BOB, GUARD, f"welcome {BOB}")]
    assert reply_of(update(core, 4, ALICE, st=reply_of(out).st, ct=2, data=None)).st


def test_reload_without_changes_does_nothing(tmp_path):
    core = make(tmp_path)
    script = core.logic[1].script
    assert core.reload(1)[:2] == ([], 0) and core.logic[1].script is script


@pytest.mark.parametrize("broken, error", [
    ("function OnTick(now", "AlphaWorld.lua:1:"),
    ("function OnReload(old) error('migration failed') end", "migration failed"),
    ("local x = require('missing')", "no module 'missing'"),
])
def test_failed_reload_keeps_the_old_logic(tmp_path, broken, error, logged):  # noqa: F811
    core = make(tmp_path)
    old = core.logic[1].script
    edit(tmp_path, broken)
    errors, count, out = core.reload(2)
    assert count == 0 and out == [] and error in errors[0]
    assert core.logic[1].script is old
    assert said(update(core, 3, ALICE)) == [(ALICE, GUARD, f"hi {ALICE}")]
    assert "reload refused" in logged.text()


def test_reload_is_all_or_nothing_across_nodes(tmp_path):
    lib = library(tmp_path, {"regions/AlphaWorld_100_100.lua": "x = 1",
                             "regions/AlphaWorld_101_100.lua": "x = 1"})
    core = GridProcessCore(GRID, [GW], GridSettings(), scripts=lib)
    spawn(core, 100, 1)
    spawn(core, 101, 2)
    olds = {i: core.logic[i].script for i in (1, 2)}
    edit(tmp_path, "x = 2", "regions/AlphaWorld_100_100.lua")
    edit(tmp_path, "x = = 2", "regions/AlphaWorld_101_100.lua")
    errors, count, _ = core.reload(1)
    assert count == 0 and len(errors) == 1
    assert {i: core.logic[i].script for i in (1, 2)} == olds
    edit(tmp_path, "x = 3", "regions/AlphaWorld_101_100.lua")
    assert core.reload(2)[:2] == ([], 2)
    assert [core.logic[i].script.vm.globals.x for i in (1, 2)] == [2, 3]


def test_a_changed_required_module_triggers_a_reload(tmp_path):
    core = make(tmp_path, "local m = require('lib.m') function Value() return m.v end",
                **{"lib/m": "return { v = 1 }"})
    edit(tmp_path, "return { v = 2 }", "lib/m.lua")
    assert core.reload(1)[:2] == ([], 1)
    assert core.logic[1].script.call(1, "Value") == [2]


def test_a_script_added_later_starts_on_reload(tmp_path):
    lib = library(tmp_path, {"regions/Other.lua": ""})
    core = GridProcessCore(GRID, [GW], GridSettings(), scripts=lib)
    spawn(core)
    assert core.logic == {}
    edit(tmp_path, "function OnInit(node) npc.spawn('g', { x = 0, y = 0, z = 0 }) end")
    assert core.reload(1)[:2] == ([], 0)
    assert "g.1@grid1.localhost" in core.nodes[1].agents


def test_node_close_and_process_stop_call_on_stop(tmp_path):
    core = make(tmp_path, "function OnStop() storeKey('stopped', true) end", persist=True)
    core.effects.clear()
    core.stop(5)
    assert SaveKey(f"{ALPHA}|regions.AlphaWorld", "stopped", "true") in core.effects
    assert core.logic == {}


# -- gateway OnLogin -----------------------------------------------------------------------


@pytest.mark.parametrize("body, expected", [
    ("", "guest"),
    ("return true", "guest"),
    ("if login.user == 'eve@x' then return false, 'banned' end", None),
    ("return 'administrator'", "administrator"),
    ("error('oops')", "guest"),  # a failing hook is skipped: the rule's role
    ("wait(1)", "guest"),  # OnLogin may not wait
    ("return 42", "guest"),
])
def test_gateway_on_login(tmp_path, body, expected):
    lib = library(tmp_path, {"gateway.lua": f"function OnLogin(login) {body} end"})
    hook = LoginScript(lib)
    assert hook("eve@x", ALPHA, "guest") == expected
    assert hook.script.parked == 0


def test_gateway_script_reloads(tmp_path):
    lib = library(tmp_path, {"gateway.lua": "function OnLogin() return 'a' end"})
    hook = LoginScript(lib)
    (tmp_path / "gateway.lua").write_text("function OnLogin() return 'b' end")
    assert hook.reload(1)[:2] == ([], 1) and hook("x@y", ALPHA, "guest") == "b"
    (tmp_path / "gateway.lua").write_text("function OnLogin(")
    assert hook.reload(2)[1] == 0 and hook("x@y", ALPHA, "guest") == "b"


def test_npcs_per_node_are_bounded(tmp_path, logged):  # noqa: F811
    core = make(tmp_path, """
        function OnTick(now)
          for i = 1, 300 do
            npc.spawn('n' .. math.floor(now) .. '_' .. i, { x = 0, y = 0, z = 0 })
          end
        end""")
    for now in (1, 2, 3):
        core.tick(now)
    npcs = [a for a in core.nodes[1].agents.values() if a.npc]
    assert len(npcs) == 500 and "already has 500 NPCs" in logged.text()
    assert "(and 99 more not applied)" in logged.text()  # one line per call, not 100
    assert reply_of(update(core, 4, ALICE)).more  # still served, in bounded replies


def test_a_timed_out_agent_leaves_through_the_hook(tmp_path, logged):  # noqa: F811
    core = make(tmp_path)
    update(core, 1, ALICE)
    core.tick(10)
    assert f"left {ALICE}" not in logged.text()
    core.tick(30)  # past the 20 s agent timeout, at a sweep
    assert ALICE not in core.nodes[1].agents and f"left {ALICE}" in logged.text()
    assert core.nodes[1].events == []
