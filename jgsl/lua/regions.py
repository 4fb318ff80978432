"""Region scripts on grid nodes: which script runs where, and what its commands do.

The grid process (jgsl.core.gridprocess) is handed a L{ScriptLibrary} and asks it to
L{ScriptLibrary.start} a node's logic and to reload; it never imports the Lua runtime.

A node runs the first of these modules under ``lua/`` that exists: ``regions.<World>_<gx>_<gy>``
(one tile; a minus sign is written ``m``), ``regions.<World>``, ``regions.default``. The
script's hooks see the node's events; its outbox commands become node changes (NPC agents,
agent fields, env edits) and messages, applied after each hook. Sans-IO: ``now`` in,
envelopes out, store requests in ``effects``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from jgsl.core import effects as fx
from jgsl.core.effects import SaveKey
from jgsl.core.fields import decode_facing, decode_position, encode_facing, encode_position
from jgsl.core.region import Region
from jgsl.core.safetext import Logger
from jgsl.lua.convert import message_to_data
from jgsl.lua.sandbox import MODULE_NAME, Limits, ScriptError, Sources
from jgsl.lua.script import Script, decode_key
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope

log = Logger(namespace="jgsl.lua")

NPC_ASSET = "character/v3/Human/Male/HumanMale.x"
#: NPCs one node's script may have at once.
MAX_NPCS = 500
#: Author stamped on env edits a script broadcasts.
SCRIPT_AUTHOR = "script"


class ScriptLibrary:
    """The scripts under one ``lua/`` directory, with the limits every VM gets."""

    def __init__(self, root: Path, limits: Limits | None = None) -> None:
        self.root = Path(root)
        self.limits = limits or Limits()

    def module_for(self, region: Region) -> str | None:
        world = re.sub(r"\W", "_", Path(region.worldpath.rstrip("/")).name) or "default"
        tile = f"{region.gx}_{region.gy}".replace("-", "m")
        for module in (f"regions.{world}_{tile}", f"regions.{world}", "regions.default"):
            if MODULE_NAME.fullmatch(module) and self._exists(module):
                return module
        return None

    def _exists(self, module: str) -> bool:
        return (self.root / (module.replace(".", "/") + ".lua")).is_file()

    def build(self, module: str, world=None, sources: Sources | None = None) -> Script:
        return Script(module, self.root, self.limits, world, sources)

    def sources(self) -> Sources:
        """The module files as they are now (each read once however many VMs load it)."""
        return Sources(self.root)

    def start(self, node, grid_jid: str, save: Callable) -> RegionLogic | None:
        """The logic of the script that runs on ``node``, or None when no script is for
        its region. A script that does not load leaves the node running without it (logged)
        until a reload fixes it."""
        module = self.module_for(node.region)
        if module is None:
            return None
        logic = RegionLogic(node, module, grid_jid, save)
        try:
            logic.script = self.build(module, logic)
        except ScriptError as e:
            log.error("grid node {id}: script {module} does not load, the node runs without "
                      "it until a reload fixes it: {error}", id=node.id, module=module,
                      error=str(e))
        log.info("grid node {id} runs script {module}", id=node.id, module=module)
        return logic

    def reload(self, logics: list, now: float) -> tuple[list[tuple[object, Script]], list[str]]:
        """L{reload_scripts} over this library: all or nothing."""
        return reload_scripts(self, logics, now)


class RegionLogic:
    """One grid node's script: its view of the node and the node changes it asks for."""

    def __init__(self, node, module: str, grid_jid: str,
                 save_agent: Callable[[object], None]) -> None:
        self.node = node
        self.module = module
        self.grid_jid = grid_jid
        self.scope = f"{node.region.worldpath}|{module}"
        self.script: Script | None = None
        self.keys: dict[str, object] = {}
        self._save_agent = save_agent
        #: name -> JID of the NPCs this node's scripts spawned.
        self.npcs: dict[str, str] = {}
        #: Key writes for the store (SaveKey), drained by the grid process.
        self.effects: list[SaveKey] = []

    @property
    def label(self) -> str:
        return f"{self.module} (node {self.node.id})"

    # -- the script's view of the node (WorldView) ------------------------------------

    def agents(self) -> list[dict]:
        return [view for agent in self.node.agents.values()
                if (view := self._view(agent)) is not None]

    def agent(self, jid: str) -> dict | None:
        agent = self.node.agents.get(jid) or self.node.agents.get(self.npcs.get(jid, ""))
        return None if agent is None else self._view(agent)

    def cached_key(self, key: str) -> tuple[bool, object]:
        return (True, self.keys[key]) if key in self.keys else (False, None)

    def _view(self, agent) -> dict | None:
        rx, rz = agent.value("rx"), agent.value("rz")
        if rx is None or rz is None or not agent.is_agent:
            return None
        x, z = self.node.region.to_world(rx, rz)
        facing = agent.value("facing")
        view = {"jid": agent.jid, "npc": agent.npc, "role": agent.role,
                "x": x, "y": decode_position(agent.value("y") or 0), "z": z,
                "facing": 0.0 if facing is None else decode_facing(facing)}
        for name, field in (("asset", "asset_file"), ("nickname", "nickname"),
                            ("anim", "anim")):
            value = agent.value(field)
            if value is not None:
                view[name] = value
        if agent.npc:
            view["name"] = agent.jid.split(".", 1)[0]
        return view

    # -- driving the script -------------------------------------------------------------

    def info(self) -> dict:
        region = self.node.region
        info = {"id": self.node.id, "world": region.worldpath, "gx": region.gx,
                "gy": region.gy, "instance": self.node.instance, "module": self.module}
        if region.size is not None:
            info["size"] = region.size
            info["x"], info["z"] = region.origin
        return info

    def call(self, now: float, hook: str, *args) -> list[Envelope]:
        if self.script is None:
            return []
        self.script.call(now, hook, *args)
        return self.apply(now)

    def tick(self, now: float) -> list[Envelope]:
        if self.script is None:
            return []
        self.script.tick(now)
        return self.call(now, "OnTick", now)

    def agent_event(self, now: float, kind: str, jid: str) -> list[Envelope]:
        """An agent entered or left the node: the hook, then whoever waits for it."""
        if self.script is None:
            return []
        agent = self.agent(jid) or {"jid": jid}
        hook = "OnAgentEnter" if kind == "enter" else "OnAgentLeave"
        self.script.call(now, hook, agent)
        self.script.event(now, jid, {"kind": kind, "agent": agent})
        return self.apply(now)

    def message(self, now: float, sender: str, type_name: str, payload) -> list[Envelope]:
        """A client's game message (its decoded protobuf payload) for OnMessage."""
        if self.script is None:
            return []
        msg = {"type": type_name, "body": message_to_data(payload)}
        self.script.call(now, "OnMessage", sender, msg)
        self.script.event(now, sender, {"kind": "message", "message": msg})
        return self.apply(now)

    def key_loaded(self, now: float, key: str, text: str | None) -> list[Envelope]:
        self.keys[key] = value = decode_key(text)
        if self.script is None:
            return []
        self.script.key_loaded(now, key, value)
        return self.apply(now)

    # -- applying the outbox ------------------------------------------------------------

    def apply(self, now: float) -> list[Envelope]:
        """Apply the script's commands to the node; messages to send."""
        script = self.script
        if script is None:
            return []
        commands, script.commands = script.commands, []
        out: list[Envelope] = []
        failed: list[tuple[object, str]] = []
        for command in commands:
            try:
                out += self._apply(now, command)
            except fx.CommandError as e:
                failed.append((command, str(e)))
        if failed:
            command, reason = failed[0]
            more = f" (and {len(failed) - 1} more not applied)" if len(failed) > 1 else ""
            log.warn("script {module}: {command} not applied: {reason}{more}",
                     module=self.module, command=type(command).__name__, reason=reason,
                     more=more)
        rejected = self.node.rejected
        if rejected:
            more = f" (and {len(rejected) - 1} more)" if len(rejected) > 1 else ""
            log.warn("script {module}: field rejected: {problem}{more}", module=self.module,
                     problem=rejected[0], more=more)
            rejected.clear()
        return out

    @property
    def key_requests(self) -> list[str]:
        if self.script is None:
            return []
        requests, self.script.key_requests = self.script.key_requests, []
        return requests

    def _apply(self, now: float, command) -> list[Envelope]:
        node = self.node
        if isinstance(command, fx.NpcSpawn):
            jid = self.npcs.get(command.name)
            if jid is None and len(self.npcs) >= MAX_NPCS:
                raise fx.CommandError(f"the node already has {MAX_NPCS} NPCs")
            jid = jid or f"{command.name}.{node.id}@{self.grid_jid}"
            fields = {"asset": NPC_ASSET, **command.fields}
            self.npcs[command.name] = jid
            node.npc_update(now, jid, self._state(fields))
        elif isinstance(command, fx.NpcMove | fx.NpcRemove):
            jid = self.npcs.get(command.name)
            if jid is None or jid not in node.agents:
                raise fx.CommandError(f"no NPC {command.name!r} on this node")
            if isinstance(command, fx.NpcRemove):
                del self.npcs[command.name]
                node.logout(jid)
            else:
                node.npc_update(now, jid, self._state(command.fields))
        elif isinstance(command, fx.SetField):
            agent = node.agents.get(command.jid) or node.agents.get(
                self.npcs.get(command.jid, ""))
            if agent is None:
                raise fx.CommandError(f"no agent {command.jid} on this node")
            node.npc_update(now, agent.jid, self._state({command.name: command.value}))
        elif isinstance(command, fx.SendMessage):
            agent = node.agents.get(command.to)
            if agent is None or agent.npc:
                raise fx.CommandError(f"{command.to} is not a client on this node")
            speaker = self.npcs.get(command.speaker, command.speaker)
            return [Envelope(self.grid_jid, command.to, pb.ServerGameMessage(
                sk=node.key, id=node.id, type=command.type, body=command.body,
                **{"from": speaker}))]
        elif isinstance(command, fx.BroadcastEnv):
            problem = node.env.append(pb.WorldEdit(kind=command.kind, params=command.params),
                                      f"{SCRIPT_AUTHOR}:{self.module}")
            if problem:
                raise fx.CommandError(problem)
        elif isinstance(command, fx.Kick):
            agent = node.agents.get(command.jid)
            if agent is None or agent.npc:
                raise fx.CommandError(f"{command.jid} is not a client on this node")
            log.info("script {module} kicked {jid}: {reason}", module=self.module,
                     jid=command.jid, reason=command.reason)
            node.logout(command.jid)
            self._save_agent(agent)
            return [Envelope(self.grid_jid, command.jid,
                             pb.Closing(sk=node.key, reason=command.reason or "kicked"))]
        elif isinstance(command, fx.StoreKey):
            self.keys[command.key] = decode_key(command.value)
            self.effects.append(SaveKey(self.scope, command.key, command.value))
        return []

    def _state(self, fields: dict) -> pb.AgentState:
        """Script fields (world units, radians) as the node's encoded agent state."""
        region = self.node.region
        state = pb.AgentState()
        for name, value in fields.items():
            if name == "x":
                state.rx = region.to_local(value, region.origin[1])[0]
            elif name == "z":
                state.rz = region.to_local(region.origin[0], value)[1]
            elif name == "y":
                state.y = encode_position(value)
            elif name == "facing":
                state.facing = encode_facing(value)
            elif name == "scaling":
                state.scaling = max(1, min(100_000, round(value * 100)))
            elif name == "asset":
                state.asset_file = value
            else:
                setattr(state, name, value)
        return state


class LoginScript:
    """``lua/gateway.lua``: its OnLogin({user, world, role}) decides the gateway's logins.

    OnLogin returns nothing or true (let in with the rule's role), a role name (let in with
    that role), or false and a reason (refused: "not authorized"). A failing OnLogin is
    logged and skipped: the rule's role applies. OnLogin may not wait.
    """

    MODULE = "gateway"

    def __init__(self, library: ScriptLibrary) -> None:
        self.library = library
        self.module = self.label = self.MODULE
        self.script: Script | None = library.build(self.MODULE)

    def __call__(self, user: str, world: str, role: str) -> str | None:
        script = self.script
        try:
            result = script.call(0.0, "OnLogin", {"user": user, "world": world, "role": role},
                                 strict=True)
        except ScriptError as e:
            log.error("gateway script: OnLogin failed for {user}, the rule's role applies: "
                      "{error}", user=user, error=str(e))
            return role
        if script.parked:
            script.drop_parked()
            log.error("gateway script: OnLogin may not wait; {user} gets the rule's role",
                      user=user)
            return role
        verdict = result[0] if result else None
        if verdict is None or verdict is True:
            return role
        if verdict is False:
            reason = result[1] if len(result) > 1 else ""
            log.info("gateway script refused {user}: {reason}", user=user, reason=reason or "-")
            return None
        if isinstance(verdict, str) and verdict:
            return verdict
        log.error("gateway script: OnLogin returned {value!r}; the rule's role applies",
                  value=verdict)
        return role

    def reload(self, now: float) -> tuple[list[str], int, list]:
        swaps, errors = reload_scripts(self.library, [self], now)
        for _, fresh in swaps:
            self.script = fresh
        return errors, len(swaps), []


def reload_scripts(library: ScriptLibrary, logics: list,
                   now: float) -> tuple[list[tuple[object, Script]], list[str]]:
    """New VMs for every holder (``.script``, ``.module``, ``.label``) whose script changed,
    each given the old global ``state`` through OnReload(state) (or as ``state`` itself when
    there is no OnReload). All or nothing: returns (swaps, []) or ([], errors)."""
    swaps: list[tuple[RegionLogic, Script]] = []
    errors: list[str] = []
    sources = library.sources()
    for logic in logics:
        old = logic.script
        if old is not None and not old.changed(sources):
            continue
        try:
            world = logic if isinstance(logic, RegionLogic) else None  # a node's view
            fresh = library.build(logic.module, world, sources)
            state = old.state() if old is not None else None
            if fresh.has("OnReload"):
                fresh.call(now, "OnReload", state, strict=True)
            elif state is not None:
                fresh.vm.globals["state"] = fresh.vm.table(state) \
                    if isinstance(state, dict | list) else state
            swaps.append((logic, fresh))
        except ScriptError as e:
            errors.append(f"{logic.label}: {e}")
    return ([], errors) if errors else (swaps, [])
