"""One game script: its VM, its hooks, its parked coroutines and its outbox.

Every hook call runs in a fresh coroutine. If the hook calls ``wait(seconds)``,
``waitForSignal(name)``, ``waitForEvent(agent)`` or ``loadKey(key)`` (not cached), the
coroutine is parked and resumed later by ``tick`` (time), ``sendSignal``, ``event`` or
``key_loaded``: the clock is whatever ``now`` the owner passes, so tests drive it by hand.
A failing hook is logged with its Lua traceback and skipped; nothing else stops.
"""

from __future__ import annotations

import json
import math
import weakref
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lupa.lua54 import lua_type

from jgsl.core import effects as fx
from jgsl.core.safetext import Logger
from jgsl.lua import commands as c
from jgsl.lua.convert import FieldError, table_to_message
from jgsl.lua.sandbox import ConversionError, Limits, LuaVM, ScriptError, Sources, to_python
from jgsl.wire.game import UnknownPayloadError, payload_class

#: Hook failures in this process by module, over every VM it ran (a reload starts a new
#: Script, so its own ``errors`` restart at 0): /metrics' jgsl_lua_errors_total.
ERRORS: Counter[str] = Counter()
log = Logger(namespace="jgsl.lua")

#: Parked coroutines per script; beyond this a new park is an error (a leak, most likely).
MAX_PARKED = 10_000
#: Commands, log lines and signals one hook call (or resume) may issue: an outbox flood is
#: an error at the call that overflows it, not a node with a million NPCs.
MAX_COMMANDS = 1_000


class WorldView(Protocol):
    """What a script may read of its node, answered at once (no side effects)."""

    def agents(self) -> list[dict]: ...
    def agent(self, jid: str) -> dict | None: ...
    def cached_key(self, key: str) -> tuple[bool, object]: ...


class NoWorld:
    """The view of a script that has no node (the gateway's)."""

    def agents(self) -> list[dict]:
        return []

    def agent(self, jid: str) -> dict | None:
        return None

    def cached_key(self, key: str) -> tuple[bool, object]:
        return True, None


@dataclass
class Parked:
    co: object
    kind: str  # wait | signal | event | load
    arg: object
    due: float = math.inf


class Script:
    """One Lua module in its own sandboxed VM (jgsl.lua.sandbox): its hooks called with
    limits, its coroutines scheduled, its host calls turned into outbox commands, and its
    ``state`` handed on at a reload."""

    def __init__(self, module: str, root: Path, limits: Limits | None = None,
                 world: WorldView | None = None, sources: Sources | None = None) -> None:
        self.module = module
        self.world = world or NoWorld()
        #: Commands for the owner to apply after each call (the outbox).
        self.commands: list[fx.Command] = []
        #: Keys the owner should fetch; each answer goes to ``key_loaded``.
        self.key_requests: list[str] = []
        self.errors = 0
        self._signals: list[tuple[str, object]] = []
        self._parked: list[Parked] = []
        self._now = 0.0
        #: What the running call may still issue (see MAX_COMMANDS).
        self.budget = MAX_COMMANDS
        self.vm = LuaVM(root, self._api(), limits or Limits(), sources)
        self.vm.load_main(module)  # ScriptError if it does not compile or its top level fails

    @property
    def parked(self) -> int:
        return len(self._parked)

    def drop_parked(self) -> None:
        self._parked.clear()

    def has(self, hook: str) -> bool:
        return self.vm.globals[hook] is not None

    def changed(self, now: Sources) -> bool:
        return self.vm.changed(now)

    # -- calling hooks -----------------------------------------------------------------

    def call(self, now: float, hook: str, *args, strict: bool = False) -> list | None:
        """Run ``hook(*args)``; its return values if it finished, None if it parked, failed
        or does not exist. With ``strict`` a failure raises ScriptError instead."""
        fn = self.vm.globals[hook]
        if fn is None:
            return None
        self._now, self.budget = now, MAX_COMMANDS
        args = tuple(self._lua(a) for a in args)
        try:
            co, state, values = self.vm.start(fn, *args)
        except ScriptError as e:
            if strict:
                raise
            self._failed(hook, e)
            return None
        if state == "parked":
            self._park(co, values, hook)
            self._flush_signals(now)
            return None
        self._flush_signals(now)
        return [_data_or_none(v) for v in values]

    def tick(self, now: float) -> None:
        """Resume every coroutine whose ``wait`` is over."""
        self._now = now
        due = [p for p in self._parked if p.kind == "wait" and p.due <= now]
        for parked in due:
            self._resume(parked, now, now)  # wait() returns the time it woke up
        self._flush_signals(now)

    def event(self, now: float, jid: str, event: dict) -> None:
        """An agent's event (enter, leave, message): resume who waits for that agent."""
        waiting = [p for p in self._parked if p.kind == "event" and p.arg == jid]
        for parked in waiting:
            self._resume(parked, now, self._lua(event))
        self._flush_signals(now)

    def key_loaded(self, now: float, key: str, value) -> None:
        for parked in [p for p in self._parked if p.kind == "load" and p.arg == key]:
            self._resume(parked, now, self._lua(value))
        self._flush_signals(now)

    def state(self):
        """The global ``state`` as plain data (what a reload hands to the new VM)."""
        value = self.vm.globals["state"]
        try:
            return to_python(value)
        except ConversionError as e:
            raise ScriptError(f"{self.module}: global 'state' cannot be handed over: {e}") \
                from None

    def _resume(self, parked: Parked, now: float, *args) -> None:
        self._parked.remove(parked)
        self._now, self.budget = now, MAX_COMMANDS
        try:
            state, values = self.vm.resume(parked.co, *args)
        except ScriptError as e:
            self._failed("a resumed coroutine", e)
            return
        if state == "parked":
            self._park(parked.co, values, "a resumed coroutine")

    def _park(self, co, values: list, where: str) -> None:
        kind, arg = (values + [None, None])[:2]
        if len(self._parked) >= MAX_PARKED:
            self._failed(where, ScriptError(f"more than {MAX_PARKED} parked coroutines"))
            return
        if kind == "wait":
            if isinstance(arg, bool) or not isinstance(arg, int | float) or not arg >= 0:
                self._failed(where, ScriptError(f"wait({arg!r}): seconds must be >= 0"))
                return
            self._parked.append(Parked(co, kind, None, self._now + arg))
        elif kind == "event":
            jid = arg["jid"] if lua_type(arg) == "table" else arg  # an agent table or a JID
            if not isinstance(jid, str):
                self._failed(where, ScriptError("waitForEvent(agent): agent or JID expected"))
                return
            self._parked.append(Parked(co, kind, jid))
        elif kind == "signal" and isinstance(arg, str):
            self._parked.append(Parked(co, kind, arg))
        elif kind == "load":
            self._parked.append(Parked(co, kind, arg))
            if arg not in self.key_requests:
                self.key_requests.append(arg)
        else:
            self._failed(where, ScriptError(f"coroutine.yield is reserved ({kind!r})"))

    def _flush_signals(self, now: float) -> None:
        rounds = 0
        while self._signals and rounds < 100:
            rounds += 1
            signals, self._signals = self._signals, []
            for name, value in signals:
                for parked in [p for p in self._parked if p.kind == "signal" and p.arg == name]:
                    self._resume(parked, now, self._lua(value))

    def _failed(self, where: str, error: ScriptError) -> None:
        self.errors += 1
        ERRORS[self.module] += 1
        log.error("script {module}: {where} failed: {error}", module=self.module, where=where,
                  error=str(error))

    # -- the host API (called from Lua; answers ok, value or None, message) -----------

    def _api(self) -> dict:
        """The host functions, holding the script only weakly (see LuaVM)."""
        return _host_api(weakref.proxy(self))

    def _lua(self, value):
        return self.vm.table(value) if isinstance(value, dict | list) else value


def _host_api(self: Script) -> dict:
    """Every host function scripts call; ``self`` is a weak proxy of the script."""
    def checked(fn):
        def call(*args):
            try:
                return True, fn(*args)
            except (fx.CommandError, FieldError, ConversionError) as e:
                return None, str(e)
            except Exception as e:  # a host bug: the script sees an error, we log it
                log.failure("script {module}: host function failed", module=self.module)
                return None, f"internal error: {e}"
        return call

    def data(value):
        return None if value is None else to_python(value)

    def spend() -> None:
        self.budget -= 1
        if self.budget < 0:
            raise fx.CommandError(f"more than {MAX_COMMANDS} commands, log lines and signals "
                                 "in one call")

    def command(cmd) -> bool:
        spend()
        self.commands.append(cmd)
        return True

    def send(to, type_name, body):
        to = c.text(to, "the recipient JID")
        try:
            cls = payload_class(c.text(type_name, "the message type"))
        except UnknownPayloadError:
            raise fx.CommandError(f"no game message type {type_name!r}") from None
        message = table_to_message(body, cls)
        return command(fx.SendMessage(to, type_name, message.SerializeToString()))

    def say(npc, to, text):
        npc, to = c.npc_name(npc), c.text(to, "the recipient JID")
        message = payload_class("Say")(text=c.text(text, "the text", 1024))
        return command(fx.SendMessage(to, "Say", message.SerializeToString(), npc))

    def log_line(*parts):
        spend()
        log.info("script {module}: {text}", module=self.module,
                 text=" ".join(str(to_python(p)) for p in parts)[:1000])
        return True

    def signal(name, value=None):
        spend()
        self._signals.append((c.text(name, "the signal name"), data(value)))
        return True

    def load_key(key):
        hit, value = self.world.cached_key(c.text(key, "the key", 200))
        return self._lua({"hit": hit, "value": value} if hit else {"hit": False})

    def agents():
        return self._lua(self.world.agents())

    def agent(jid):
        found = self.world.agent(c.text(jid, "the JID"))
        return None if found is None else self._lua(found)

    return {name: checked(fn) for name, fn in {
        "log": log_line,
        "sendSignal": signal,
        "send": send,
        "say": say,
        "broadcastEnv": lambda kind, params=None: command(c.env_params(kind, data(params))),
        "setField": lambda jid, name, value: command(
            fx.SetField(c.text(jid, "the JID"), *next(iter(
                c.agent_fields({name: value}).items())))),
        "kick": lambda jid, reason="": command(
            fx.Kick(c.text(jid, "the JID"), c.text(reason or "", "the reason"))),
        "storeKey": lambda key, value: command(c.key_value(key, data(value))),
        "loadKey": load_key,
        "agents": agents,
        "agent": agent,
        "npcSpawn": lambda name, fields: command(
            fx.NpcSpawn(c.npc_name(name), c.agent_fields(data(fields), ("x", "y", "z")))),
        "npcMove": lambda name, fields: command(
            fx.NpcMove(c.npc_name(name), c.agent_fields(data(fields)))),
        "npcRemove": lambda name: command(fx.NpcRemove(c.npc_name(name))),
    }.items()}


def _data_or_none(value):
    try:
        return to_python(value)
    except ConversionError:
        return None


def decode_key(text: str | None):
    """A stored script key (JSON text) as plain data; None if absent or undecodable."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        log.error("script key value does not decode: {text!r}", text=text[:80])
        return None
