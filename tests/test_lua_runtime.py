"""The Lua runtime: sandbox, limits, require, protobuf <-> Lua tables, scheduler, outbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jgsl.core import effects as fx
from jgsl.lua.convert import FieldError, message_to_data, table_to_message
from jgsl.lua.sandbox import Limits, LuaVM, ScriptError
from jgsl.lua.script import Script
from jgsl.wire import game_pb2
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.messages import REGISTRY
from tests.samples import fill

LIMITS = Limits(memory=8 << 20, instructions=200_000)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def script(tmp_path, source: str, world=None, **files) -> Script:
    write(tmp_path, {"main.lua": source, **{f"{k}.lua": v for k, v in files.items()}})
    return Script("main", tmp_path, LIMITS, world)


# -- sandbox ---------------------------------------------------------------------------


@pytest.mark.parametrize("expression", [
    "os", "io", "debug.sethook", "debug.getinfo", "package", "dofile", "loadfile",
    "collectgarbage", "python", "string.dump", "load",
])
def test_escape_hatches_are_gone(tmp_path, expression):
    s = script(tmp_path, f"function Probe() return {expression} end")
    assert s.call(0, "Probe") == [None]


def test_python_objects_are_not_reachable(tmp_path):
    """Host functions are closures in the prelude; their Python attributes are denied."""
    s = script(tmp_path, "function Probe() return type(log), pcall(function() return "
                         "log.__class__ end) end")
    assert s.call(0, "Probe")[0] == "function"


def test_bytecode_is_refused_by_require(tmp_path):
    (tmp_path / "evil.lua").write_bytes(b"\x1bLuaT\x00\x19\x93\r\n\x1a\n")
    s = script(tmp_path, "function Probe() return pcall(require, 'evil') end")
    ok, message = s.call(0, "Probe")
    assert ok is False and "binary chunk" in message


def test_infinite_loop_is_stopped_and_the_vm_lives_on(tmp_path, logged):
    s = script(tmp_path, """
        function Spin() while true do end end
        function Sneaky() while true do pcall(function() while true do end end) end end
        function Fine() return 42 end""")
    assert s.call(0, "Spin") is None
    assert s.call(0, "Sneaky") is None  # pcall cannot swallow the limit
    assert s.call(0, "Fine") == [42]
    assert logged.text().count("instruction limit exceeded") == 2
    assert s.errors == 2


def test_memory_bomb_is_stopped_and_the_vm_lives_on(tmp_path, logged):
    s = script(tmp_path, """
        function Bomb() local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(1 << 16) .. i end end
        function Rep() return #string.rep("x", 1 << 30) end
        function Fine() return 1 + 1 end""")
    assert s.call(0, "Bomb") is None
    assert s.call(0, "Rep") is None
    assert s.call(0, "Fine") == [2]
    assert logged.text().count("not enough memory") == 2


def test_host_hands_large_values_without_aborting(tmp_path, logged):
    """Python -> Lua conversions run with the limit off (lupa aborts the whole process on an
    allocation failure outside a protected call); Lua code then runs under the limit."""
    s = script(tmp_path, "function Len(t) return #t end "
                         "function Grow(t) local copy = {} for i = 1, #t do copy[i] = t[i] .. '!'"
                         " end return #copy end")
    assert s.call(0, "Len", [f"{i:0999d}" for i in range(5_000)]) == [5_000]  # 5 MB
    assert s.call(0, "Grow", [f"{i:0999d}" for i in range(5_000)]) is None  # 10 MB: too much
    assert s.call(0, "Len", ["y" * 1000] * 20_000) is None  # 20 MB handed over: refused
    assert logged.text().count("not enough memory") == 2
    assert s.call(0, "Len", [1, 2, 3]) == [3]


def test_error_has_lua_traceback_with_file_and_line(tmp_path, logged):
    s = script(tmp_path, "local m = require('lib.m')\nfunction Boom() m.fail() end",
               **{"lib/m": "local M = {}\nfunction M.fail()\n  error('broken')\nend\nreturn M"})
    assert s.call(0, "Boom") is None
    text = logged.text()
    assert "lua/lib/m.lua:3: broken" in text.replace(tmp_path.name, "lua")
    assert "stack traceback" in text and "in function 'Boom'" in text


def test_syntax_error_names_file_and_line(tmp_path):
    with pytest.raises(ScriptError, match=r"main\.lua:2:"):
        script(tmp_path, "function OnTick(now)\n  if then end\nend")


# -- require ---------------------------------------------------------------------------


def test_require_loads_once_from_the_scripts_dir(tmp_path):
    s = script(tmp_path, "local a = require('lib.a') local b = require('lib.a') "
                         "function Probe() return a == b, a.n end",
               **{"lib/a": "count = (count or 0) + 1 return { n = count }"})
    assert s.call(0, "Probe") == [True, 1]


@pytest.mark.parametrize("name", ["../outside", "/etc/passwd", "lib..a", "missing", "a b"])
def test_require_stays_under_the_scripts_dir(tmp_path, name):
    (tmp_path.parent / "outside.lua").write_text("return 1")
    s = script(tmp_path, "function Probe(n) return pcall(require, n) end")
    ok, message = s.call(0, "Probe", name)
    assert ok is False and "require" in message


def test_circular_require_is_reported_with_the_cycle(tmp_path):
    files = {"a": "require('b')", "b": "require('c')", "c": "require('a')"}
    with pytest.raises(ScriptError, match=r"c\.lua:1: circular require: a -> b -> c -> a"):
        script(tmp_path, "require('a')", **files)


def test_a_script_requiring_itself_is_a_cycle(tmp_path):
    with pytest.raises(ScriptError, match="circular require: main -> a -> main"):
        script(tmp_path, "require('a')", a="require('main')")


# -- protobuf <-> Lua ------------------------------------------------------------------


@pytest.mark.parametrize("cls", list(REGISTRY.values()) + [game_pb2.Say, game_pb2.Emote],
                         ids=lambda cls: cls.__name__)
def test_every_message_round_trips_through_a_lua_table(tmp_path, cls):
    vm = LuaVM(tmp_path, {}, LIMITS)
    message = fill(cls())
    table = vm.table(message_to_data(message))
    assert table_to_message(table, cls) == message


@settings(max_examples=50)
@given(rx=st.integers(-2**31, 2**31 - 1), name=st.text(max_size=20),
       facing=st.integers(0, 2**32 - 1), recover=st.lists(st.integers(0, 2**32 - 1)))
def test_round_trip_property(tmp_path_factory, rx, name, facing, recover):
    vm = LuaVM(tmp_path_factory.getbasetemp(), {}, LIMITS)
    message = pb.NormalUpdate(sk=name, recover=recover)
    message.agent.data.rx, message.agent.data.facing = rx, facing
    assert table_to_message(vm.table(message_to_data(message)), pb.NormalUpdate) == message


def test_enums_travel_by_name(tmp_path):
    data = message_to_data(pb.Closing(reason="x"))
    assert data == {"sk": "", "reason": "x"}
    vm = LuaVM(tmp_path, {}, LIMITS)
    t = vm.runtime.eval("{ nodes = { { info = { id = 3, gsize = 200 } } }, uptime = 1.5 }")
    hello = table_to_message(t, pb.GridHello)
    assert hello.nodes[0].info.id == 3 and hello.nodes[0].info.gsize == 200


@pytest.mark.parametrize("lua, cls, error", [
    ("{ txt = 'hi' }", game_pb2.Say, "jgsl.game.Say: no field 'txt'"),
    ("{ text = 5 }", game_pb2.Say, "jgsl.game.Say.text: expected string, got number"),
    ("{ id = 'x' }", pb.Logout, "jgsl.Logout.id: expected number, got string"),
    ("{ id = -1 }", pb.Logout, "jgsl.Logout.id: -1 is out of range"),
    ("{ id = 1.5 }", pb.Logout, "jgsl.Logout.id: expected integer, got 1.5"),
    ("{ recover = { 1, 'a' } }", pb.NormalUpdate, r"jgsl.NormalUpdate.recover\[2\]: expected"),
    ("{ agent = { data = { rx = true } } }", pb.NormalUpdate,
     "jgsl.NormalUpdate.agent.data.rx: expected number, got boolean"),
    ("{ agent = 5 }", pb.NormalUpdate, "jgsl.NormalUpdate.agent: expected a table"),
    ("{ creations = { { params = { k = 1 } } } }", pb.AgentData,
     r"jgsl.AgentData.creations\[1\].params\['k'\]: expected string"),
    ("{ is_grid = 'yes' }", pb.PingReply, "jgsl.PingReply.is_grid: expected boolean"),
    ("{ nodes = { { info = { gx = print } } } }", pb.GridHello, "a function is not plain data"),
])
def test_wrong_field_name_or_type_is_named(tmp_path, lua, cls, error):
    vm = LuaVM(tmp_path, {}, LIMITS)
    with pytest.raises(FieldError, match=error):
        table_to_message(vm.runtime.eval(lua), cls)


def test_wrong_field_is_a_lua_error_at_the_call_site(tmp_path, logged):
    s = script(tmp_path, "function Send()\n  send('a@b', 'Say', { txt = 'hi' })\nend\n"
                         "function Catch() return pcall(send, 'a@b', 'Nope', {}) end")
    assert s.call(0, "Send") is None
    assert "main.lua:2: jgsl.game.Say: no field 'txt'" in logged.text()
    assert s.call(0, "Catch") == [False, "no game message type 'Nope'"]
    assert s.commands == []


# -- scheduler -------------------------------------------------------------------------


def test_wait_resumes_when_the_clock_says(tmp_path):
    s = script(tmp_path, "trace = {} function OnTick(now) trace[#trace + 1] = 'a' .. now "
                         "local t = wait(2.5) trace[#trace + 1] = 'b' .. t end "
                         "function Trace() return table.concat(trace, ',') end")
    s.call(10, "OnTick", 10)
    assert s.parked == 1
    s.tick(12.4)
    assert s.call(12.4, "Trace") == ["a10"]
    s.tick(12.5)
    assert s.call(12.5, "Trace") == ["a10,b12.5"] and s.parked == 0


def test_signals_wake_every_waiter_with_the_value(tmp_path):
    s = script(tmp_path, """
        got = {}
        function Wait(tag) local v = waitForSignal('open') got[#got + 1] = tag .. '=' .. v end
        function Open(v) sendSignal('open', v) end
        function Other() sendSignal('close') end
        function Got() return table.concat(got, ',') end""")
    s.call(0, "Wait", "x")
    s.call(0, "Wait", "y")
    s.call(1, "Other")
    assert s.parked == 2
    s.call(2, "Open", 7)
    assert sorted(s.call(2, "Got")[0].split(",")) == ["x=7", "y=7"] and s.parked == 0


def test_wait_for_event_gets_that_agents_next_event(tmp_path):
    s = script(tmp_path, """
        seen = {}
        function Watch(agent) local e = waitForEvent(agent) seen[#seen + 1] = e.kind end
        function Seen() return table.concat(seen, ',') end""")
    s.call(0, "Watch", {"jid": "a@x"})
    s.call(0, "Watch", "b@x")
    s.event(1, "c@x", {"kind": "enter"})
    assert s.parked == 2
    s.event(2, "a@x", {"kind": "message"})
    assert s.call(2, "Seen") == ["message"] and s.parked == 1


def test_wait_outside_a_hook_thread_is_an_error(tmp_path, logged):
    s = script(tmp_path, "function Probe() local co = coroutine.wrap(function() wait(1) end) "
                         "return pcall(co) end")
    ok, message = s.call(0, "Probe")
    assert ok is False and "may only be called from a hook" in message


def test_top_level_may_not_wait(tmp_path):
    with pytest.raises(ScriptError, match="may not wait"):
        script(tmp_path, "wait(1)")


class Keys:
    def __init__(self, known):
        self.known = known

    def agents(self):
        return []

    def agent(self, jid):
        return None

    def cached_key(self, key):
        return (True, self.known[key]) if key in self.known else (False, None)


def test_load_key_from_cache_or_parks_until_loaded(tmp_path):
    s = script(tmp_path, "got = {} function Get(k) got[#got + 1] = tostring(loadKey(k)) end "
                         "function Got() return table.concat(got, ',') end",
               world=Keys({"a": 1}))
    s.call(0, "Get", "a")
    s.call(0, "Get", "b")
    assert s.key_requests == ["b"] and s.parked == 1
    s.key_loaded(1, "b", {"x": 2})
    assert s.call(1, "Got")[0].startswith("1,table")


# -- outbox ----------------------------------------------------------------------------


def test_outbox_commands_are_checked_and_queued(tmp_path):
    s = script(tmp_path, """
        function Go()
          npc.spawn('guard', { x = 1, y = 2, z = 3, nickname = 'G' })
          npc.move('guard', { x = 4, facing = 1.5 })
          npc.say('guard', 'a@x', 'hello')
          send('a@x', 'Emote', { name = 'wave' })
          broadcastEnv('weather', { rain = 'yes', level = 3 })
          setField('a@x', 'anim', 'Dance')
          kick('a@x', 'cheating')
          storeKey('count', { n = 5, tags = { 'a' } })
          npc.remove('guard')
        end""")
    s.call(0, "Go")
    kinds = [type(cmd).__name__ for cmd in s.commands]
    assert kinds == ["NpcSpawn", "NpcMove", "SendMessage", "SendMessage", "BroadcastEnv",
                     "SetField", "Kick", "StoreKey", "NpcRemove"]
    assert s.commands[0] == fx.NpcSpawn("guard", {"x": 1, "y": 2, "z": 3, "nickname": "G"})
    assert s.commands[2].speaker == "guard"
    assert game_pb2.Emote.FromString(s.commands[3].body).name == "wave"
    assert s.commands[4].params == {"rain": "yes", "level": "3"}
    assert s.commands[7].value == '{"n":5,"tags":["a"]}'


@pytest.mark.parametrize("call, error", [
    ("npc.spawn('guard', { x = 1 })", "field 'y' is required"),
    ("npc.spawn('bad name', { x = 1, y = 1, z = 1 })", "use letters, digits"),
    ("npc.move('guard', { x = 1/0 })", "not finite"),
    ("npc.move('guard', { colour = 'red' })", "no agent field 'colour'"),
    ("setField('a@x', 'nickname', ('x'):rep(300))", "longer than 256"),
    ("storeKey('k', print)", "plain data"),
    ("broadcastEnv('k', { a = {} })", "must be a string"),
    ("kick(5)", "must be a string"),
])
def test_bad_commands_are_lua_errors(tmp_path, call, error):
    s = script(tmp_path, f"function Go() return pcall(function() {call} end) end")
    ok, message = s.call(0, "Go")
    assert ok is False and error in message
    assert s.commands == []


def test_an_outbox_flood_is_an_error_at_the_call_that_overflows_it(tmp_path, logged):
    s = script(tmp_path, """
        function Flood() for i = 1, 1e6 do storeKey('k' .. i, i) end end
        function Spam() for i = 1, 1e6 do log(i) end end
        function Fine() storeKey('k', 1) end""")
    assert s.call(0, "Flood") is None
    assert "more than 1000 commands" in logged.text() and len(s.commands) == 1000
    s.commands.clear()
    assert s.call(0, "Spam") is None
    assert logged.text().count("script main: ") < 1100
    assert s.call(0, "Fine") == [] and len(s.commands) == 1  # the budget is per call
