"""A grid process: the grid nodes of one XMPP component, its messages, scripts and store.

It registers with the gateways (GRID_HELLO heartbeats), spawns and closes nodes on their
sealed request, admits clients with the gateways' signed tickets, runs each node's region
script, and saves agents and node logs through store effects. Sans-IO: L{GridProcessCore}
takes ``now`` and envelopes and returns envelopes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

from jgsl.core.agent import Agent, AgentMode
from jgsl.core.component import AdminAnswer, Quiet
from jgsl.core.droplog import DropLog
from jgsl.core.effects import LOG_KINDS, LoadKey, LoadNode, NodeLogs, SaveAgent, SaveEdit
from jgsl.core.fields import (
    MAX_COORDINATE,
    MAX_STRING,
    decode_position,
)
from jgsl.core.jids import bare
from jgsl.core.keys import new_key
from jgsl.core.node import GridNode, GridSettings
from jgsl.core.region import Region
from jgsl.core.rules import RuleSet
from jgsl.core.safetext import Logger, message_text_problem
from jgsl.core.stringmaps import StringMap, default_maps
from jgsl.core.tickets import DEV_TICKET_SECRET, issued_ahead, ticket_problem
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Bounce, Envelope
from jgsl.wire.game import DecodeError, UnknownPayloadError, decode_payload

log = Logger(namespace="jgsl.grid")

class RegionLogic(Protocol):
    """One node's running script, as the grid process drives it (jgsl.lua.regions)."""

    node: GridNode
    module: str
    scope: str
    script: object
    effects: list
    key_requests: list[str]

    def info(self) -> dict: ...
    def call(self, now: float, hook: str, *args) -> list[Envelope]: ...
    def tick(self, now: float) -> list[Envelope]: ...
    def agent_event(self, now: float, kind: str, jid: str) -> list[Envelope]: ...
    def message(self, now: float, sender: str, type_name: str, payload) -> list[Envelope]: ...
    def key_loaded(self, now: float, key: str, text: str | None) -> list[Envelope]: ...
    def apply(self, now: float) -> list[Envelope]: ...


class RegionScripts(Protocol):
    """The region scripts a grid process is handed (jgsl.lua.regions.ScriptLibrary)."""

    def start(self, node: GridNode, grid_jid: str,
              save: Callable[[Agent], bool]) -> RegionLogic | None: ...
    def reload(self, logics: list[RegionLogic],
               now: float) -> tuple[list[tuple[RegionLogic, object]], list[str]]: ...


#: Messages for one of the process's nodes (sk, id).
_NODE_MESSAGES = frozenset({pb.NormalUpdate, pb.ObserverUpdate, pb.Logout})


class GridProcessCore(Quiet):
    """All the grid nodes of one grid process (one XMPP component).

    With ``persist`` set, store requests go to ``effects`` (run by the link): agents are
    saved when they log out, time out, and at shutdown; a node's logs are loaded before it
    reports ready and saved as they grow.
    """

    def __init__(self, jid: str, gateways: list[str], settings: GridSettings | None = None, *,
                 start: float = 0.0, key_factory: Callable[[], str] = new_key,
                 maps: dict[str, StringMap] | None = None,
                 ticket_secret: bytes = DEV_TICKET_SECRET,
                 trusted: tuple[str, ...] = (), persist: bool = False,
                 scripts: RegionScripts | None = None, rules: RuleSet | None = None) -> None:
        self.jid = jid
        #: The world's node rules: a spawn request for a world no rule serves is refused.
        self.rules = rules
        #: Region scripts (lua/), or None to run nodes without game logic.
        self.scripts = scripts
        self.logic: dict[int, RegionLogic] = {}
        self.persist = persist
        #: Store requests for the adapter (only with ``persist``).
        self.effects: list = []
        #: Set by L{stop}: clients get SC_Closing, nothing changes any more.
        self.closing = False
        #: Nodes whose stored logs are being loaded, and the spawn requests waiting for them.
        self._loading: dict[str, tuple[GridNode, list[tuple[str, int]]]] = {}
        self._ticket_secret = ticket_secret
        self.maps = maps or default_maps()
        self.gateways = [bare(g) for g in gateways]
        #: Gateways whose tickets and spawn requests are accepted.
        self.trusted = set(self.gateways) | {bare(g) for g in trusted}
        self.settings = settings or GridSettings()
        self.nodes: dict[int, GridNode] = {}
        self._next_id = 1
        self._started = start
        self._next_hello = start
        self._next_sweep = start
        self._key_factory = key_factory
        self._drops = DropLog(log)
        self._clock_warnings = DropLog(log, burst=1, window=60.0, prefix="")

    def connected(self, now: float) -> list[Envelope]:
        """Register with the gateways as soon as the link is up."""
        self._next_hello = now
        return self.tick(now)

    def tick(self, now: float) -> list[Envelope]:
        out: list[Envelope] = []
        if now >= self._next_sweep:
            self._next_sweep = now + self.settings.sweep_interval
            for node in self.nodes.values():
                for agent in node.expire(now):
                    log.info("agent {agent} timed out on node {node}", agent=agent.jid,
                             node=node.id)
                    self._save(node, agent)
        for node in list(self.nodes.values()):
            out += self._node_events(now, node)  # those who timed out (clears the list)
            logic = self.logic.get(node.id)
            if logic is not None and not self.closing:
                out += logic.tick(now)
                out += self._after_script(now, logic)
        if now < self._next_hello or self.closing:
            return out
        self._next_hello = now + self.settings.hello_interval
        hello = pb.GridHello(uptime=now - self._started)
        for node in self.nodes.values():
            hosted = hello.nodes.add(key=node.key, admitted=node.admitted)
            node.admitted = []
            hosted.info.id, hosted.info.jid = node.id, self.jid
            hosted.info.agents, hosted.info.role = node.active_agents, node.role
            hosted.info.instance = node.instance
            node.region.to_info(hosted.info)
        return out + [Envelope(self.jid, gateway, hello) for gateway in self.gateways]

    def receive(self, now: float, envelope: Envelope) -> list[Envelope]:
        msg, sender = envelope.message, bare(envelope.sender)
        if isinstance(msg, pb.SpawnNode):
            return self._spawn(now, sender, msg)
        if isinstance(msg, pb.CloseNode):
            return self._close(now, sender, msg)
        if isinstance(msg, pb.MapRequest):
            return self._map_report(now, sender, msg)
        if type(msg) in _NODE_MESSAGES:
            node = self.nodes.get(msg.id)
            if node is None or node.key != msg.sk:
                self._drops.drop(now, "{type} from {sender} for unknown node {id} or wrong key",
                                 type=type(msg).__name__, sender=sender, id=msg.id)
                return []
            if self.closing:  # everything was saved as it was at the stop: change nothing
                if isinstance(msg, pb.Logout):
                    return []
                return [Envelope(self.jid, envelope.sender,
                                 pb.Closing(sk=node.key, reason="shutting down"))]
            if isinstance(msg, pb.Logout):
                agent = node.logout(sender)
                if agent is not None:
                    self._save(node, agent)
                return self._node_events(now, node)
            if sender not in node.agents:
                problem = self._ticket_problem(now, sender, node, msg.ticket)
                if problem:
                    self._drops.drop(now, "{sender} may not join node {id}: {reason}",
                                     sender=sender, id=node.id, reason=problem)
                    return []
                node.admit(sender, msg.ticket.role)
            elif msg.st == 0 and msg.HasField("ticket") and self._ticket_problem(
                    now, sender, node, msg.ticket) is None:
                node.admitted.append(sender)  # a relogin: the gateway counts it once
            if isinstance(msg, pb.NormalUpdate):
                reply = node.normal_update(now, sender, msg)
            else:
                reply = node.observer_update(now, sender, msg)
            if node.rejected:
                for problem in node.rejected:
                    self._drops.drop(now, "rejected field from {problem}", problem=problem)
                node.rejected.clear()
            out = [Envelope(self.jid, envelope.sender, reply)]
            if node.events or node.id in self.logic:  # (no script, nobody came: nothing)
                out += self._node_events(now, node)
            self._save_logs(node)
            return out
        if isinstance(msg, pb.GameMessage):
            return self._game_message(now, sender, msg)
        if isinstance(msg, Bounce):
            return self._bounced(now, sender, msg)
        self._drops.drop(now, "{type} is not for a grid process (from {sender})",
                         type=type(msg).__name__, sender=sender)
        return []

    def _bounced(self, now: float, sender: str, msg: Bounce) -> list[Envelope]:
        """The XMPP server could not deliver to a client: it is gone. Its agents leave now
        (saved, as at a logout) rather than after agent_timeout of silence."""
        if not msg.unreachable:
            return []
        out: list[Envelope] = []
        for node in list(self.nodes.values()):
            agent = node.agents.get(sender)
            if agent is not None and not agent.npc:
                node.logout(sender)
                self._save(node, agent)
                log.info("agent {agent} left node {node}: the XMPP server says it is gone "
                         "({condition})", agent=sender, node=node.id, condition=msg.condition)
                out += self._node_events(now, node)
        return out

    def _ticket_problem(self, now: float, sender: str, node: GridNode,
                        ticket: pb.Ticket) -> str | None:
        skew = self.settings.max_clock_skew
        problem = ticket_problem(self._ticket_secret, ticket, sender, node.id, node.key, now,
                                 self.trusted, skew)
        ahead = issued_ahead(ticket, now)
        if problem is None and ahead > skew:
            self._clock_warnings.drop(
                now, "gateway {gateway}'s clock is {ahead:.1f} s ahead of ours (it issued a "
                "ticket in the future): more than --max-clock-skew {skew:g} s; run NTP on "
                "every host (docs/deploy.md)", gateway=ticket.gateway, ahead=ahead, skew=skew)
        return problem

    # -- region scripts ----------------------------------------------------------------

    def _node_events(self, now: float, node: GridNode) -> list[Envelope]:
        """Agents that entered or left the node, told to its script."""
        events, node.events = node.events, []
        logic = self.logic.get(node.id)
        if logic is None or self.closing:
            return []
        out: list[Envelope] = []
        for kind, jid in events:
            out += logic.agent_event(now, kind, jid)
        return out + self._after_script(now, logic)

    def _after_script(self, now: float, logic: RegionLogic) -> list[Envelope]:
        """Store requests and node changes that follow what a script did."""
        out = self._node_events(now, logic.node) if logic.node.events else []
        writes, logic.effects = logic.effects, []
        for key in logic.key_requests:
            if self.persist:
                self.effects.append(LoadKey(logic.scope, key, logic.node.id))
            else:
                out += logic.key_loaded(now, key, None)
        if self.persist:
            self.effects += writes
        self._save_logs(logic.node)
        return out

    def _game_message(self, now: float, sender: str, msg: pb.GameMessage) -> list[Envelope]:
        node = self.nodes.get(msg.id)
        if node is None or node.key != msg.sk or sender not in node.agents \
                or node.agents[sender].mode is not AgentMode.AGENT or self.closing:
            self._drops.drop(now, "game message from {sender} for node {id}: not an agent "
                             "there (or wrong key)", sender=sender, id=msg.id)
            return []
        try:
            payload = decode_payload(msg.type, msg.body)
        except (UnknownPayloadError, DecodeError) as e:
            self._drops.drop(now, "game message {type!r} from {sender}: {reason}",
                             type=msg.type, sender=sender, reason=str(e) or "does not decode")
            return []
        problem = message_text_problem(payload)
        if problem:
            self._drops.drop(now, "game message {type!r} from {sender} refused: {reason}",
                             type=msg.type, sender=sender, reason=problem)
            return []
        logic = self.logic.get(node.id)
        if logic is None:
            self._drops.drop(now, "game message from {sender}: node {id} runs no script",
                             sender=sender, id=node.id)
            return []
        out = logic.message(now, sender, msg.type, payload)
        return out + self._after_script(now, logic)

    def _start_logic(self, now: float, node: GridNode) -> list[Envelope]:
        logic = None if self.scripts is None else self.scripts.start(
            node, self.jid, lambda agent: self._save(node, agent))
        if logic is None:
            return []
        self.logic[node.id] = logic
        return logic.call(now, "OnInit", logic.info()) + self._after_script(now, logic)

    def _stop_logic(self, now: float, node_id: int) -> list[Envelope]:
        logic = self.logic.pop(node_id, None)
        if logic is None:
            return []
        out = logic.call(now, "OnStop")
        return out + self._after_script(now, logic)

    def reload(self, now: float) -> tuple[list[str], int, list[Envelope]]:
        """Reload every script that changed, all or none: (errors, reloaded, envelopes).

        New VMs are built beside the old ones and handed their state through OnReload; if
        any fails, the old ones keep running and nothing changes."""
        if self.scripts is None:
            return ["this grid process runs no scripts"], 0, []
        logics = list(self.logic.values())
        swaps, errors = self.scripts.reload(logics, now)
        if errors:
            for error in errors:
                log.error("reload refused, the old scripts keep running: {error}", error=error)
            return errors, 0, []
        out: list[Envelope] = []
        for logic, fresh in swaps:
            old, logic.script = logic.script, fresh
            dropped = old.parked if old is not None else 0
            log.info("grid node {id}: script {module} reloaded ({dropped} parked coroutines "
                     "of the old version dropped)", id=logic.node.id, module=logic.module,
                     dropped=dropped)
            out += logic.apply(now) + self._after_script(now, logic)
        for node in list(self.nodes.values()):  # scripts that appeared since the nodes started
            if node.id not in self.logic:
                out += self._start_logic(now, node)
        return [], len(swaps), out

    # -- an operator's commands (jgsl-admin) -------------------------------------------

    def admin(self, now: float, command: str, args: list[str]) -> AdminAnswer:
        if command == "users" and len(args) <= 1:
            return self._users(now, args[0] if args else None)
        if command == "kick" and 1 <= len(args) <= 2:
            return self._kick(now, bare(args[0]), args[1] if len(args) == 2 else "")
        if command == "drain" and not args:
            return self._drain(now)
        return AdminAnswer(False, f"{self.jid}: unknown command or arguments: "
                           f"{' '.join([command, *args])} (users [NODE], kick USER [REASON], "
                           "drain)")

    def _users(self, now: float, node_id: str | None) -> AdminAnswer:
        nodes = [n for n in self.nodes.values() if node_id is None or str(n.id) == node_id]
        if node_id is not None and not nodes:
            return AdminAnswer(False, f"{self.jid}: no node {node_id}")
        data, lines = {"grid": self.jid, "nodes": []}, []
        for node in nodes:
            agents = []
            for agent in node.agents.values():
                x, z = node.region.to_world(*agent.pos) if agent.pos else (None, None)
                agents.append({"jid": agent.jid, "name": str(agent.value("nickname") or ""),
                               "npc": agent.npc, "observer": agent.mode is not AgentMode.AGENT,
                               "role": agent.role, "x": x, "z": z,
                               "idle_s": round(now - agent.last_active, 1)})
            data["nodes"].append({"id": node.id, "world": node.region.worldpath,
                                  "gx": node.region.gx, "gy": node.region.gy,
                                  "agents": agents})
            lines.append(f"node {node.id} {node.region}: {len(agents)} agent(s)")
            for a in agents:
                where = f" at {a['x']:.1f},{a['z']:.1f}" if a["x"] is not None else ""
                kind = "npc" if a["npc"] else "observer" if a["observer"] else a["role"]
                lines.append(f"  {a['jid']} ({kind}){where}, idle {a['idle_s']:.0f} s")
        return AdminAnswer(True, "\n".join(lines) or f"{self.jid}: no nodes", data)

    def _kick(self, now: float, user: str, reason: str) -> AdminAnswer:
        out: list[Envelope] = []
        for node in self.nodes.values():
            agent = node.agents.get(user)
            if agent is None or agent.npc:
                continue
            log.info("an admin kicked {user} from node {node}: {reason}", user=user,
                     node=node.id, reason=reason or "no reason given")
            node.logout(user)
            self._save(node, agent)
            out.append(Envelope(self.jid, user, pb.Closing(sk=node.key,
                                                           reason=reason or "kicked")))
            out += self._node_events(now, node)
        if not out:
            return AdminAnswer(False, f"{self.jid}: {user} is on none of its nodes")
        return AdminAnswer(True, f"{self.jid}: {user} kicked", {"user": user}, out)

    def _drain(self, now: float) -> AdminAnswer:
        """Every client is told to go (SC_Closing) and its agent saved; the nodes close.
        The gateways, told to drain this process first, serve the regions elsewhere."""
        out: list[Envelope] = []
        clients = 0
        for node in list(self.nodes.values()):
            for agent in list(node.agents.values()):
                if agent.npc:
                    continue
                clients += 1
                node.logout(agent.jid)
                self._save(node, agent)
                out.append(Envelope(self.jid, agent.jid,
                                    pb.Closing(sk=node.key, reason="moving to another server")))
            out += self._stop_logic(now, node.id)
            del self.nodes[node.id]
        log.info("drained (an admin asked): {clients} client(s) sent elsewhere, nodes closed",
                 clients=clients)
        return AdminAnswer(True, f"{self.jid}: drained, {clients} client(s) moved",
                           {"clients": clients}, out)

    #: Largest map report part, bytes: well under the codec's 48 KiB.
    MAP_PART_BYTES = 32 * 1024

    def _map_report(self, now: float, sender: str, msg: pb.MapRequest) -> list[Envelope]:
        """Where this process's agents are, for a gateway's live map (observers, which are
        other nodes' agents looking across a border, are left out)."""
        if sender not in self.trusted:
            self._drops.drop(now, "GRID_MAP_REQUEST from {sender} ignored: not a gateway of "
                             "ours", sender=sender)
            return []
        parts = [pb.MapReport(request=msg.request)]
        size = 0  # (estimated as it grows: ByteSize() each time would cost n squared)
        for node in self.nodes.values():
            region = node.region
            entry = parts[-1].nodes.add(id=node.id, worldpath=region.worldpath, gx=region.gx,
                                        gy=region.gy, instance=node.instance, role=node.role,
                                        max_users=node.max_users)
            if region.size is not None:
                entry.gsize = region.size
            for agent in node.agents.values():
                if agent.mode is not AgentMode.AGENT or agent.pos is None:
                    continue
                name = str(agent.value("nickname") or agent.jid.split("@")[0])[:64]
                size += len(agent.jid) + len(name) + 32
                if size > self.MAP_PART_BYTES:
                    parts.append(pb.MapReport(request=msg.request))
                    entry = parts[-1].nodes.add()
                    entry.CopyFrom(parts[-2].nodes[-1])
                    del entry.agents[:]
                    size = 0
                x, z = region.to_world(*agent.pos)
                entry.agents.add(jid=agent.jid, name=name, x=x, z=z, npc=agent.npc,
                                 y=decode_position(int(agent.value("y") or 0)))
        for number, part in enumerate(parts):
            part.part, part.parts = number, len(parts)
        return [Envelope(self.jid, sender, part) for part in parts]

    def _close(self, now: float, sender: str, msg: pb.CloseNode) -> list[Envelope]:
        node = self.nodes.get(msg.id)
        if sender not in self.trusted or node is None or node.key != msg.key:
            self._drops.drop(now, "GRID_CLOSE_NODE for node {id} from {sender} ignored",
                             id=msg.id, sender=sender)
            return []
        if msg.superseded:
            # The region is served elsewhere since this process was thought dead: its
            # agents, logs and script state are older than the new node's; keep none. A
            # client still here logs in again at once (one that moved ignores the old key).
            self.logic.pop(node.id, None)
            del self.nodes[msg.id]
            log.warn("grid node {id} closed without saving: {region} is served by another "
                     "grid process now ({agents} stale agents dropped)", id=node.id,
                     region=str(node.region), agents=len(node.agents))
            return [Envelope(self.jid, agent.jid, pb.Closing(
                sk=node.key, reason="served by another grid process"))
                for agent in node.agents.values() if not agent.npc]
        if node.agents:
            log.info("node {id} not closed: it has agents again", id=node.id)
            return []
        out = self._stop_logic(now, node.id)
        del self.nodes[msg.id]
        log.info("grid node {id} closed ({region})", id=node.id, region=str(node.region))
        return out

    # -- persistence -------------------------------------------------------------------

    def stop(self, now: float) -> list[Envelope]:
        """Shutting down: SC_Closing to every client of every node, and save every agent.

        From now on updates are answered with SC_Closing and change nothing, so what was
        saved is what the clients last had acknowledged.
        """
        if self.closing:
            return []
        # The gateways first: they route no login here from now on, so the clients told
        # below find their regions served elsewhere when they log in again.
        out = [Envelope(self.jid, gateway, pb.GridClosing(reason="shutting down"))
               for gateway in self.gateways]
        for node_id in list(self.logic):  # OnStop may still store keys or say goodbye
            out += self._stop_logic(now, node_id)
        self.closing = True
        saved = clients = 0
        for node in self.nodes.values():
            for agent in node.agents.values():
                if agent.npc:
                    continue
                clients += 1
                out.append(Envelope(self.jid, agent.jid,
                                    pb.Closing(sk=node.key, reason="shutting down")))
                saved += self._save(node, agent)
        log.info("closing: SC_Closing sent to {clients} clients, {saved} agents saved",
                 clients=clients, saved=saved)
        return out

    def republish(self, now: float) -> list[Envelope]:
        """The store lost what it held: save every live agent and node log again."""
        if not self.persist:
            return []
        agents = edits = 0
        for node in self.nodes.values():
            for agent in node.agents.values():
                if not agent.npc:
                    agents += self._save(node, agent)
            if node.persist_logs:
                for kind in LOG_KINDS:
                    for seq, edit in getattr(node, kind).entries:
                        self.effects.append(SaveEdit(node.name, kind, seq, edit))
                        edits += 1
        log.info("re-publishing {agents} live agents and {edits} node log entries to the "
                 "store", agents=agents, edits=edits)
        return []

    def _save(self, node: GridNode, agent: Agent) -> bool:
        record = node.record(agent) if self.persist else None
        if record is not None:
            self.effects.append(SaveAgent(node.region.worldpath, bare(agent.jid), record))
        return record is not None

    def _save_logs(self, node: GridNode) -> None:
        for kind in LOG_KINDS:
            edits = getattr(node, kind)
            if not edits.changes:
                continue  # (every update asks)
            changes = edits.drain()
            if self.persist and node.persist_logs:
                self.effects += [SaveEdit(node.name, kind, seq, edit) for seq, edit in changes]

    def effect_done(self, now: float, effect, outcome) -> list[Envelope]:
        if isinstance(effect, LoadKey):
            return self._key_loaded(now, effect, outcome)
        if not isinstance(effect, LoadNode):
            return []
        return self._loaded(now, effect.node, outcome or NodeLogs(), None)

    def _key_loaded(self, now: float, effect: LoadKey, text) -> list[Envelope]:
        logic = self.logic.get(effect.node)
        if logic is None or logic.scope != effect.scope:
            return []  # the node closed meanwhile
        return logic.key_loaded(now, effect.key, text) + self._after_script(now, logic)

    def effect_failed(self, now: float, effect, reason: str) -> list[Envelope]:
        if isinstance(effect, LoadKey):
            log.error("store: script key {key} unreadable ({reason}); the script gets nil",
                      key=effect.key, reason=reason)
            return self._key_loaded(now, effect, None)
        if not isinstance(effect, LoadNode):
            log.error("store: {effect} failed: {reason}", effect=type(effect).__name__,
                      reason=reason)
            return []
        return self._loaded(now, effect.node, NodeLogs(), reason)

    def _loaded(self, now: float, name: str, logs: NodeLogs, problem: str | None) -> list[Envelope]:
        """The node's stored logs are in (or could not be read): it is ready."""
        node, waiting = self._loading.pop(name, (None, []))
        if node is None:
            return []
        if problem is not None:
            node.persist_logs = False
            log.warn("grid node {id} ({name}): stored logs unavailable ({reason}); it starts "
                     "without them and its edits this session are not saved", id=node.id,
                     name=name, reason=problem)
        else:
            node.creations.restore(logs.creations)
            node.env.restore(logs.env)
            if logs.creations or logs.env:
                log.info("grid node {id} ({name}): restored {creations} creations and {env} "
                         "environment entries", id=node.id, name=name,
                         creations=len(logs.creations), env=len(logs.env))
        if self.closing:
            return [Envelope(self.jid, gateway, pb.NodeReady(
                request=request, refused=True, reason="shutting down"))
                for gateway, request in waiting]
        self.nodes[node.id] = node
        log.info("grid node {id} spawned for {region}", id=node.id, region=str(node.region))
        return [Envelope(self.jid, gateway, pb.NodeReady(request=request, id=node.id,
                                                          key=node.key))
                for gateway, request in waiting] + self._start_logic(now, node)

    def _spawn_problem(self, msg: pb.SpawnNode) -> str | None:
        """Why no node is made for a spawn request (even a trusted gateway's)."""
        problem = message_text_problem(msg)
        if problem:
            return problem
        if not msg.worldpath or len(msg.worldpath) > MAX_STRING:
            return "no world path, or a longer one than any"
        if self.rules is not None and not self.rules.knows_world(msg.worldpath):
            return f"no rule serves world {msg.worldpath}"
        if msg.HasField("gsize") and not (
                math.isfinite(msg.gsize) and 0 < msg.gsize <= MAX_COORDINATE):
            return f"region size {msg.gsize} is out of range"
        return None

    def _spawn(self, now: float, sender: str, msg: pb.SpawnNode) -> list[Envelope]:
        if sender not in self.trusted:
            self._drops.drop(now, "GRID_SPAWN_NODE from untrusted {sender}", sender=sender)
            return []
        if self.closing:
            return [Envelope(self.jid, sender, pb.NodeReady(
                request=msg.request, refused=True, reason="shutting down"))]
        problem = self._spawn_problem(msg)
        if problem:
            self._drops.drop(now, "GRID_SPAWN_NODE from {sender} refused: {reason}",
                             sender=sender, reason=problem)
            return [Envelope(self.jid, sender, pb.NodeReady(
                request=msg.request, refused=True, reason=problem))]
        region = Region.from_fields(msg.worldpath, msg.gx, msg.gy,
                                    msg.gsize if msg.HasField("gsize") else None)
        existing = next((n for n in self.nodes.values()
                         if (n.region, n.instance) == (region, msg.instance)), None)
        if existing is None:
            name = f"{region}#{msg.instance}"
            if name in self._loading:  # asked again while its logs load
                self._loading[name][1].append((sender, msg.request))
                return []
            node = GridNode(self._next_id, self._key_factory(), region, msg.role or "guest",
                            msg.max_users, self.settings, self.maps, msg.instance)
            self._next_id += 1
            self._loading[name] = (node, [(sender, msg.request)])
            if self.persist:
                self.effects.append(LoadNode(name))
                return []
            return self._loaded(now, name, NodeLogs(), None)
        return [Envelope(self.jid, sender,
                         pb.NodeReady(request=msg.request, id=existing.id, key=existing.key))]


