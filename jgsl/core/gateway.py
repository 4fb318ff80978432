"""The gateway: tells a client which grid node simulates the region around a point.

Sans-IO: L{GatewayCore.receive} and L{GatewayCore.tick} take ``now`` and envelopes and
return envelopes to send. Grid processes register with GRID_HELLO heartbeats; the gateway
asks the least-loaded live one to spawn a node (GRID_SPAWN_NODE) the first time a region is
needed, answers the waiting logins when the node is ready (GRID_NODE_READY) with a signed
ticket, keeps nodes under ``max_users`` (refusing, or opening overflow instances where the
rule allows), and asks grids to close nodes that stayed empty (GRID_CLOSE_NODE).
"""

from __future__ import annotations

import enum
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

from jgsl.core.component import AdminAnswer, Quiet
from jgsl.core.droplog import DropLog
from jgsl.core.effects import (
    AgentRecord,
    Claim,
    Effect,
    LoadAgent,
    Lookup,
    NodeRecord,
    Outcome,
    Publish,
    Release,
    Restore,
)
from jgsl.core.fields import valid_coordinate
from jgsl.core.jids import bare
from jgsl.core.keys import new_key
from jgsl.core.region import Region
from jgsl.core.rules import Pattern, Rule, RuleSet
from jgsl.core.safetext import Logger, message_text_problem
from jgsl.core.tickets import DEV_TICKET_SECRET, sign
from jgsl.core.worldmap import WorldMap
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Bounce, Envelope, XmppPing, XmppPong
from jgsl.wire.messages import CLIENT_VERSION, SERVER_VERSION

log = Logger(namespace="jgsl.gateway")

#: role_hook(user JID, world path, role from the rules) -> role to grant, or None to deny.
RoleHook = Callable[[str, str, str], str | None]


@dataclass(frozen=True)
class GatewaySettings:
    #: The grid nodes' interest radius (NodeSettings sense_radius), told to clients in
    #: SC_Login_Reply so they watch neighbouring nodes that far around them; None: none.
    interest_radius: float | None = None
    #: Seconds between look-ups of a node another gateway is spawning.
    lookup_interval: float = 0.25
    #: A grid process that sent no GRID_HELLO for this long is dead.
    grid_dead_after: float = 10.0
    #: A grid process silent this long (a heartbeat and a half) is pinged (XEP-0199): a
    #: bounce from the XMPP server, or no answer within ``ping_timeout``, means dead.
    suspect_after: float = 3.0
    ping_timeout: float = 2.0
    #: A spawn request unanswered for this long is given up and its logins refused.
    spawn_timeout: float = 10.0
    #: Agents per node; a full node refuses, or overflows where the rule allows.
    max_users: int = 500
    #: Seconds a login ticket stays valid for joining the grid node.
    ticket_lifetime: float = 60.0
    #: Seconds a node may stay empty before the gateway asks its grid to close it.
    recycle_delay: float = 60.0
    server_version: int = SERVER_VERSION
    client_version: int = CLIENT_VERSION
    #: Logins announcing an older client version are refused (0: accept all).
    min_client_version: int = 0
    #: Users whose JID node part this does not match are not authorized (original nidfilter).
    user_filter: Pattern | None = None
    role_hook: RoleHook | None = None


@dataclass
class _PendingLogin:
    client: str
    request: pb.Login
    role: str


NodeKey = tuple[Region, int]  # region and overflow instance


class NodeState(enum.Enum):
    """Where a region's node is, as this gateway knows it (docs/gateway.md draws it)."""

    #: Asking the shared store whether this gateway may spawn the region.
    CLAIMING = "claiming"
    #: GRID_SPAWN_NODE sent (the claim was won, or there is no shared store).
    SPAWNING = "spawning"
    #: Another gateway spawns it: waiting for its record or the grid's heartbeat.
    OTHER = "other"
    #: Logins are answered.
    READY = "ready"


CLAIMING, SPAWNING, OTHER, READY = NodeState
#: Every transition a node may make; leaving for good (forgotten) is not a state.
TRANSITIONS: dict[NodeState, frozenset[NodeState]] = {
    CLAIMING: frozenset({CLAIMING, SPAWNING, OTHER, READY}),
    OTHER: frozenset({OTHER, CLAIMING, READY}),
    SPAWNING: frozenset({READY}),
    READY: frozenset(),
}


@dataclass
class _Node:
    region: Region
    instance: int
    role: str
    grid: str
    id: int = 0
    key: str = ""
    agents: int = 0  # as the grid last reported
    #: Users handed a ticket the grid has not yet reported admitting, and when the ticket
    #: expires: distinct users, so repeated logins and relogins count once.
    joined: dict[str, float] = field(default_factory=dict)
    #: Users the grid reported admitting (so counted in ``agents``) who have not left or
    #: been sent elsewhere since: a relogin of one of them is not counted again.
    present: set[str] = field(default_factory=set)
    last_used: float = 0.0
    state: NodeState = READY
    request: int = 0  # our GRID_SPAWN_NODE request while SPAWNING
    requested_at: float = 0.0
    next_lookup: float = 0.0
    waiting: list[_PendingLogin] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.state is READY

    def enter(self, state: NodeState) -> None:
        if state not in TRANSITIONS[self.state]:
            raise RuntimeError(f"node {self.region}#{self.instance}: no transition "
                               f"{self.state.value} -> {state.value}")
        self.state = state

    @property
    def alloc_key(self) -> str:
        r = self.region
        return "\x1f".join((r.worldpath, str(r.gx), str(r.gy), str(r.size), str(self.instance)))

    def record(self) -> NodeRecord:
        return NodeRecord(self.grid, self.id, self.key, self.role)

    @property
    def load(self) -> int:
        return self.agents + len(self.joined) + len(self.waiting)


@dataclass
class _Grid:
    jid: str
    last_seen: float
    capacity: int = 0
    #: The id of our unanswered XMPP ping (the process is suspected), and when it went.
    ping: str | None = None
    pinged_at: float = 0.0
    #: Seconds the process has run, as its last GRID_HELLO said.
    uptime: float = 0.0


class GatewayCore(Quiet):
    """The gateway of one XMPP component: logins routed to the node of their region.

    It knows grid processes by their sealed heartbeats, spawns nodes on the least-loaded one
    (after a won claim, when several gateways share a store), counts each node's distinct
    users, refuses with reasons, recycles idle nodes, and watches grid processes for death
    (docs/gateway.md draws both state machines).
    """

    def __init__(
        self,
        jid: str,
        rules: RuleSet,
        settings: GatewaySettings | None = None,
        *,
        start: float = 0.0,
        wall_clock: Callable[[], float] = time.time,
        key_factory: Callable[[], str] = new_key,
        ticket_secret: bytes = DEV_TICKET_SECRET,
        shared: bool = False,
        persist: bool = False,
    ) -> None:
        self._ticket_secret = ticket_secret
        #: Several gateways share allocation through a store: spawning needs a won claim.
        self.shared = shared
        #: A store holds users' saved agents: a ping naming a world is answered with the
        #: user's saved state there (looked up through a LoadAgent effect).
        self.persist = persist
        #: Store requests for the adapter to run: allocation steps when shared, saved-agent
        #: look-ups when persisting; results come back through L{effect_done} /
        #: L{effect_failed}.
        self.effects: list[Effect | LoadAgent] = []
        self.jid = jid
        self.rules = rules
        self.settings = settings or GatewaySettings()
        self.sk = key_factory()
        self.shutting_down = False
        self._started = start
        self._wall_clock = wall_clock
        self._grids: dict[str, _Grid] = {}
        self._nodes: dict[NodeKey, _Node] = {}
        #: The node each user was last handed a ticket for (a user is counted in one place).
        self._where: dict[str, NodeKey] = {}
        self._requests = count(1)
        self._pings = count(1)
        #: Our own link to the XMPP server is down: silence proves nothing about the grids.
        self._offline = False
        self._online_since = float("-inf")  # when our link came back after an outage
        self._visits = 0
        #: Login answers by (result, reason): "ok" or "refused" and the refusal's reason
        #: without its particulars ("full (100 users)" is "full"), for /metrics.
        self.logins: Counter[tuple[str, str]] = Counter()
        #: Where the agents are, for the live map (asked for only while a page shows it).
        self.map = WorldMap()
        #: Grid processes an operator drains (jgsl-admin drain): no new regions go there.
        self.draining: set[str] = set()
        #: (grid, node id, key) told to close as superseded, and until when not again.
        self._superseded: dict[tuple[str, int, str], float] = {}
        self._drops = DropLog(log)
        self._handlers: dict[type, Callable[[float, str, object], list[Envelope]]] = {
            pb.Ping: self._on_ping,
            pb.Login: self._on_login,
            pb.Query: self._on_query,
            pb.GridHello: self._on_grid_hello,
            pb.NodeReady: self._on_node_ready,
            pb.Logout: self._on_logout,
            pb.GridClosing: self._on_grid_closing,
            pb.MapReport: self._on_map_report,
            XmppPong: self._on_pong,
            Bounce: self._on_bounce,
        }

    # -- input -------------------------------------------------------------------------

    def connected(self, now: float) -> list[Envelope]:
        """Nothing to announce (grid processes and clients come to the gateway); after an
        outage of our own link, every grid gets a fresh heartbeat's time to report."""
        if self._offline:
            self._online_since = now
        self._offline = False
        for grid in self._grids.values():
            grid.last_seen, grid.ping = now, None
        # Spawn requests sent while the link was failing may be lost: ask again (a grid
        # answers a repeated request for a node it has with that node).
        return [self._spawn_request(node) for node in self._nodes.values()
                if node.state == SPAWNING]

    def disconnected(self, now: float) -> list[Envelope]:
        self._offline = True
        return []

    def begin_shutdown(self) -> None:
        """Refuse new logins from now on ("shutting down")."""
        self.shutting_down = True

    def stop(self, now: float) -> list[Envelope]:
        """The daemon is stopping: no new logins."""
        self.begin_shutdown()
        return []

    def receive(self, now: float, envelope: Envelope) -> list[Envelope]:
        handler = self._handlers.get(type(envelope.message))
        if handler is None:
            self._drops.drop(now, "{type} is not for a gateway (from {sender})",
                             type=type(envelope.message).__name__, sender=envelope.sender)
            return []
        return handler(now, envelope.sender, envelope.message)

    # -- an operator's commands (jgsl-admin) -------------------------------------------

    def admin(self, now: float, command: str, args: list[str]) -> AdminAnswer:
        if command == "status":
            return self._status(now)
        if command in ("drain", "undrain") and len(args) == 1:
            grid = bare(args[0])
            if command == "undrain":
                self.draining.discard(grid)
                return AdminAnswer(True, f"{self.jid}: {grid} gets regions again")
            self.draining.add(grid)
            moved = [n for n in self._nodes.values() if n.grid == grid]
            log.info("draining grid process {grid} (an admin asked): {count} node(s) move",
                     grid=grid, count=len(moved))
            out = self._forget_nodes(lambda n: n.grid == grid, "grid process drained",
                                     again=now)
            return AdminAnswer(True, f"{self.jid}: {grid} drained; {len(moved)} node(s) "
                               "will be served elsewhere as their users log in again",
                               {"grid": grid, "nodes": len(moved)}, out)
        return AdminAnswer(False, f"{self.jid}: unknown command or arguments: "
                           f"{' '.join([command, *args])} (status, drain GRID, undrain GRID)")

    def _status(self, now: float) -> AdminAnswer:
        grids = [{"jid": g.jid, "state": "suspected" if g.ping else "live",
                  "draining": g.jid in self.draining, "capacity": g.capacity,
                  "uptime_s": round(g.uptime, 1), "last_seen_s": round(now - g.last_seen, 1)}
                 for g in self._grids.values()]
        nodes = [{"grid": n.grid, "id": n.id, "world": n.region.worldpath, "gx": n.region.gx,
                  "gy": n.region.gy, "instance": n.instance, "role": n.role,
                  "state": n.state.value, "users": n.load,
                  "load": round(n.load / self.settings.max_users, 3)
                  if self.settings.max_users else None}
                 for n in self._nodes.values()]
        data = {"gateway": self.jid, "uptime_s": round(now - self._started, 1),
                "grids": grids, "nodes": nodes,
                "logins": {f"{r} {why}".strip(): c for (r, why), c in self.logins.items()}}
        lines = [f"gateway {self.jid}: up {now - self._started:.0f} s, {len(grids)} grid "
                 f"process(es), {len(nodes)} node(s)"]
        for g in grids:
            lines.append(f"  grid {g['jid']}: {g['state']}"
                         + (", draining" if g["draining"] else "")
                         + f", up {g['uptime_s']:.0f} s, capacity {g['capacity']}")
        for n in nodes:
            world = n["world"].rstrip("/").rsplit("/", 1)[-1]
            lines.append(f"  node {n['id']} {world} {n['gx']},{n['gy']}"
                         + (f" #{n['instance']}" if n["instance"] else "")
                         + f" on {n['grid']}: {n['state']}, {n['users']} user(s)"
                         + (f", load {n['load']:.1%}" if n["load"] is not None else ""))
        return AdminAnswer(True, "\n".join(lines), data)

    def grids(self) -> list[_Grid]:
        """The grid processes this gateway counts as alive (a pinged one is suspected)."""
        return list(self._grids.values())

    def nodes(self) -> list[_Node]:
        """The nodes this gateway knows, in any state."""
        return list(self._nodes.values())

    def tick(self, now: float) -> list[Envelope]:
        out: list[Envelope] = []
        request = self.map.due(now)
        if request is not None and not self._offline:
            out += [self._to(jid, pb.MapRequest(request=request)) for jid in self._grids]
        for grid in [] if self._offline else list(self._grids.values()):
            silent = now - grid.last_seen
            if silent > self.settings.grid_dead_after:
                out += self._grid_died(now, grid.jid, f"silent for {silent:.1f} s")
            elif grid.ping is not None and now - grid.pinged_at > self.settings.ping_timeout:
                out += self._grid_died(now, grid.jid, "no answer to an XMPP ping in "
                                       f"{self.settings.ping_timeout:g} s")
            elif grid.ping is None and silent > self.settings.suspect_after:
                out += self._suspect(now, grid)
        out += self._forget_nodes(
            lambda n: not n.ready and now - n.requested_at > self.settings.spawn_timeout,
            "grid node did not start in time")
        for key, node in list(self._nodes.items()):
            if node.ready and node.load == 0 \
                    and now - node.last_used > self.settings.recycle_delay:
                log.info("recycling idle grid node {id} on {grid} ({region})", id=node.id,
                         grid=node.grid, region=str(node.region))
                del self._nodes[key]
                self._release(node)
                out.append(self._to(node.grid, pb.CloseNode(id=node.id, key=node.key)))
            elif node.state == OTHER and now >= node.next_lookup:
                node.next_lookup = now + self.settings.lookup_interval
                self.effects.append(Lookup(node.alloc_key))
        return out

    # -- the shared allocation store -----------------------------------------------------

    def effect_done(self, now: float, effect: Effect, outcome: Outcome) -> list[Envelope]:
        """A store request finished: go on with the node it was about."""
        if isinstance(effect, LoadAgent):
            return [self._ping_reply(effect.reply_to, effect.csk, effect.worldpath, outcome)]
        if not isinstance(effect, Claim | Lookup):
            return []
        node = next((n for n in self._nodes.values() if n.alloc_key == effect.key), None)
        if node is None or node.state not in (CLAIMING, OTHER):
            return []
        if outcome.record is not None:
            return self._adopt(now, node, outcome.record.grid, outcome.record.id,
                               outcome.record.key, outcome.record.role)
        if outcome.owner == self.jid and node.state == CLAIMING:
            return self._start_spawn(now, node)
        if outcome.owner is None:  # the other gateway's claim lapsed: try ourselves
            node.enter(CLAIMING)
            self.effects.append(Claim(node.alloc_key, self.jid, self.settings.spawn_timeout))
            return []
        node.enter(OTHER)
        node.next_lookup = now + self.settings.lookup_interval
        return []

    def effect_failed(self, now: float, effect: Effect, reason: str) -> list[Envelope]:
        if isinstance(effect, LoadAgent):  # the store already logged it; answer anyway
            return [self._ping_reply(effect.reply_to, effect.csk, effect.worldpath, None)]
        log.error("allocation store: {effect} failed: {reason}",
                  effect=type(effect).__name__, reason=reason)
        if isinstance(effect, Claim | Lookup):
            return self._forget_nodes(
                lambda n: n.alloc_key == effect.key and n.state in (CLAIMING, OTHER),
                "allocation store unavailable")
        return []

    def republish(self, now: float) -> list[Envelope]:
        """The shared store lost what it held: write our live nodes' records back."""
        if self.shared:
            ready = [n for n in self._nodes.values() if n.ready]
            log.info("re-publishing {count} node records to the allocation store",
                     count=len(ready))
            self.effects += [Restore(n.alloc_key, self.jid, n.record()) for n in ready]
        return []

    def _release(self, node: _Node) -> None:
        if self.shared and node.state in (READY, SPAWNING):
            record = node.record() if node.ready else None
            self.effects.append(Release(node.alloc_key, self.jid, record))

    def _adopt(self, now: float, node: _Node, grid: str, node_id: int, key: str,
               role: str) -> list[Envelope]:
        node.enter(READY)
        node.grid, node.id, node.key, node.role = grid, node_id, key, role
        log.info("grid node {id} on {grid} serves {region} (instance {instance}; spawned "
                 "through another gateway)", id=node_id, grid=grid, region=str(node.region),
                 instance=node.instance)
        waiting, node.waiting = node.waiting, []
        return [self._accept(now, node, pending) for pending in waiting]

    # -- clients -----------------------------------------------------------------------

    def _on_ping(self, now: float, sender: str, msg: pb.Ping) -> list[Envelope]:
        problem = message_text_problem(msg)
        if problem:
            self._drops.drop(now, "CS_PING from {sender} refused: {reason}", sender=sender,
                             reason=problem)
            return []
        if self.persist and msg.worldpath and not self.shutting_down:
            self.effects.append(LoadAgent(msg.worldpath, bare(sender), sender, msg.csk))
            return []
        return [self._ping_reply(sender, msg.csk, msg.worldpath, None)]

    def _ping_reply(self, client: str, csk: str, worldpath: str,
                    saved: AgentRecord | None) -> Envelope:
        reply = pb.PingReply(csk=csk, sk=self.sk, is_grid=True)
        if saved is not None:
            reply.saved.CopyFrom(saved.to_message(worldpath))
        return self._to(client, reply)

    def _on_login(self, now: float, sender: str, msg: pb.Login) -> list[Envelope]:
        client = bare(sender)
        problem = self._login_problem(client, msg)
        if problem:
            return [self._refuse(client, msg, problem)]
        rule = self.rules.rule_for(msg.worldpath, msg.x, msg.z)
        role = rule.role if rule is not None and rule.gridsize is not None else "guest"
        if self.settings.role_hook is not None:
            try:
                granted = self.settings.role_hook(client, msg.worldpath, role)
            except Exception:
                log.failure("role hook failed for {user}; login refused", user=client)
                granted = None
            if granted is None:
                return [self._refuse(client, msg, "not authorized")]
            role = granted
        return self._place(now, _PendingLogin(client, msg, role))

    def _place(self, now: float, pending: _PendingLogin) -> list[Envelope]:
        """Route an admitted login to the node of its region: ready, spawning, or new."""
        client, msg = pending.client, pending.request
        rule = self.rules.rule_for(msg.worldpath, msg.x, msg.z)
        region = self._region_for(rule, msg)
        if region is None:
            reason = ("unknown world" if not self.rules.knows_world(msg.worldpath)
                      else "no rule serves this position")
            return [self._refuse(client, msg, reason)]
        instances = sorted((n for (r, _), n in self._nodes.items() if r == region),
                           key=lambda n: n.instance)
        out = self._suspect_node(now, msg.unreachable) if msg.unreachable else []
        for node in instances:
            if client in node.joined or client in node.present \
                    or node.load < self.settings.max_users:
                if not node.ready or self._in_doubt(node):
                    node.waiting = [p for p in node.waiting if p.client != client]
                    node.waiting.append(pending)
                    return out
                return out + [self._accept(now, node, pending)]
        overflow = rule.overflow if rule is not None and rule.region(
            msg.worldpath, msg.x, msg.z) == region else 0
        if instances and len(instances) > overflow:
            return out + [self._refuse(client, msg, f"full ({self.settings.max_users} users)")]
        used = {n.instance for n in instances}
        instance = next(i for i in count() if i not in used)
        node_role = rule.role if rule is not None and rule.gridsize is not None else "guest"
        return out + self._spawn(now, region, instance, node_role, pending)

    def _suspect_node(self, now: float, key: str) -> list[Envelope]:
        """A client found the node with this key unreachable: ping its grid process."""
        if now - self._online_since < self.settings.suspect_after:
            return []  # we were cut off ourselves: every grid gets time to report first
        node = next((n for n in self._nodes.values() if n.key == key and n.ready), None)
        grid = self._grids.get(node.grid) if node is not None else None
        if grid is None or grid.ping is not None:
            return []
        log.info("a client found grid node {id} on {grid} unreachable; pinging the process",
                 id=node.id, grid=node.grid)
        return self._suspect(now, grid)

    def _in_doubt(self, node: _Node) -> bool:
        """Is the node's grid process suspected (pinged, no answer yet)? Its logins wait
        for the answer (L{_on_pong}) or for its death (then they are routed elsewhere)."""
        grid = self._grids.get(node.grid)
        return grid is not None and grid.ping is not None

    def _login_problem(self, client: str, msg: pb.Login) -> str | None:
        s = self.settings
        if self.shutting_down:
            return "shutting down"
        if not msg.worldpath:
            return "no world path"
        problem = message_text_problem(msg)
        if problem:
            return problem  # e.g. "worldpath has a control character (U+0000)"
        if not all(valid_coordinate(v) for v in (msg.x, msg.y, msg.z)):
            return "invalid position"
        if msg.client_version > s.client_version:
            return (f"client version {msg.client_version} is newer than this server "
                    f"supports ({s.client_version})")
        if msg.client_version and msg.client_version < s.min_client_version:
            return (f"client version {msg.client_version} is too old "
                    f"(at least {s.min_client_version})")
        if s.user_filter is not None and not s.user_filter.search(client.partition("@")[0]):
            return "not authorized"
        return None

    def _region_for(self, rule: Rule | None, msg: pb.Login) -> Region | None:
        """The smallest region containing the point: the rule's, or an existing bigger one."""
        best = None
        for region, _ in self._nodes:
            if region.contains(msg.worldpath, msg.x, msg.z) and (
                best is None or region.smaller_than(best)
            ):
                best = region
        if rule is not None:
            ruled = rule.region(msg.worldpath, msg.x, msg.z)
            if best is None or ruled.smaller_than(best):
                best = ruled
        return best

    def _on_logout(self, now: float, sender: str, msg: pb.Logout) -> list[Envelope]:
        """A client that leaves tells the gateway too: it is on its way nowhere."""
        key = self._where.pop(bare(sender), None)
        node = self._nodes.get(key) if key is not None else None
        if node is not None:
            node.joined.pop(bare(sender), None)
            node.present.discard(bare(sender))
        return []

    def _on_query(self, now: float, sender: str, msg: pb.Query) -> list[Envelope]:
        result = pb.QueryResult(
            systime=int(self._wall_clock() * 1000),
            uptime=now - self._started,
            agentcount=sum(n.agents for n in self._nodes.values()),
        )
        for node in self._nodes.values():
            if node.ready:
                info = result.nodes.add(id=node.id, jid=node.grid, agents=node.agents,
                                        role=node.role, instance=node.instance)
                node.region.to_info(info)
        reply = pb.QueryReply(csk=msg.csk, sk=self.sk, is_grid=True, forward=msg.forward,
                              result=result)
        return [self._to(bare(sender), reply)]

    # -- grid processes ----------------------------------------------------------------

    def _on_grid_hello(self, now: float, sender: str, msg: pb.GridHello) -> list[Envelope]:
        jid = bare(sender)
        grid = self._grids.get(jid)
        if grid is None:
            log.info("grid process {grid} registered with {nodes} node(s)", grid=jid,
                     nodes=len(msg.nodes))
            grid = self._grids[jid] = _Grid(jid, now)
        grid.last_seen, grid.capacity, grid.uptime = now, msg.capacity, msg.uptime
        reported: set[NodeKey] = set()
        out: list[Envelope] = []
        for hosted in msg.nodes:
            info = hosted.info
            region = Region.from_fields(info.worldpath, info.gx, info.gy,
                                        info.gsize if info.HasField("gsize") else None)
            key = (region, info.instance)
            reported.add(key)
            node = self._nodes.get(key)
            if node is not None and node.ready and node.grid != jid:
                out += self._supersede(now, jid, info.id, hosted.key, node)
                continue
            if node is None and jid in self.draining:
                continue  # its users are moving off: its nodes are not routed to again
            if node is None:  # e.g. this gateway restarted: adopt the running node
                node = self._nodes[key] = _Node(region, info.instance, info.role or "guest",
                                                jid, last_used=now)
            if node.state in (CLAIMING, OTHER):  # another gateway spawned it
                out += self._adopt(now, node, jid, info.id, hosted.key, info.role or node.role)
            if node.grid == jid and node.ready:
                node.id, node.key, node.agents = info.id, hosted.key, info.agents
                for user in hosted.admitted:
                    node.joined.pop(user, None)
                    if self._where.get(user) == key:
                        node.present.add(user)
                for user in [u for u, expires in node.joined.items() if expires < now]:
                    del node.joined[user]  # never used: the ticket cannot be any more
                    if self._where.get(user) == key:
                        del self._where[user]
                if info.agents:
                    node.last_used = now
        # Nodes the grid no longer has (it restarted) are forgotten; pending spawns stay.
        return out + self._forget_nodes(
            lambda n: n.grid == jid and n.ready and (n.region, n.instance) not in reported,
            "grid process no longer hosts the node")

    def _supersede(self, now: float, jid: str, node_id: int, key: str,
                   serving: _Node) -> list[Envelope]:
        """A grid process we thought dead came back still running a node whose region
        another one serves now: it must close that node without saving anything of it.
        (Said once: the heartbeats held up while it was cut off may arrive together.)"""
        told = (jid, node_id, key)
        self._superseded = {t: until for t, until in self._superseded.items() if until > now}
        if told in self._superseded:
            return []
        self._superseded[told] = now + self.settings.suspect_after
        log.warn("grid process {grid} still runs grid node {id} for {region}, which "
                 "{other} serves now: telling it to close the node", grid=jid, id=node_id,
                 region=str(serving.region), other=serving.grid)
        return [self._to(jid, pb.CloseNode(id=node_id, key=key, superseded=True))]

    def _suspect(self, now: float, grid: _Grid) -> list[Envelope]:
        """Ask the XMPP server whether the grid process is still connected (XEP-0199)."""
        if grid.ping is not None:
            return []
        grid.ping, grid.pinged_at = f"jgsl-{next(self._pings)}", now
        return [self._to(grid.jid, XmppPing(grid.ping))]

    def _on_pong(self, now: float, sender: str, msg: XmppPong) -> list[Envelope]:
        """The suspected grid process answered: it lives; logins held for it go on."""
        grid = self._grids.get(bare(sender))
        if grid is None or grid.ping != msg.id:
            return []
        grid.ping, grid.last_seen = None, now
        out: list[Envelope] = []
        for node in self._nodes.values():
            if node.grid == grid.jid and node.ready and node.waiting:
                waiting, node.waiting = node.waiting, []
                out += [self._accept(now, node, pending) for pending in waiting]
        return out

    def _on_bounce(self, now: float, sender: str, msg: Bounce) -> list[Envelope]:
        """The XMPP server could not deliver to a grid process: it is not connected."""
        jid = bare(sender)
        if jid not in self._grids or not msg.unreachable:
            return []  # (a bounced reply to a client that left: nothing to do)
        return self._grid_died(now, jid, f"the XMPP server answered {msg.condition}")

    def _on_map_report(self, now: float, sender: str, msg: pb.MapReport) -> list[Envelope]:
        jid = bare(sender)
        if jid in self._grids:  # (else: not a grid process of ours, or one we gave up on)
            self.map.report(now, jid, msg)
        return []

    def _grid_died(self, now: float, jid: str, why: str) -> list[Envelope]:
        log.warn("grid process {grid} is dead ({why}); its regions will be reallocated",
                 grid=jid, why=why)
        del self._grids[jid]
        self.map.forget(jid)
        return self._forget_nodes(lambda n: n.grid == jid, "grid process died", again=now)

    def _on_grid_closing(self, now: float, sender: str, msg: pb.GridClosing) -> list[Envelope]:
        """A grid process stops gracefully: route nothing there, reallocate its regions now."""
        jid = bare(sender)
        if self._grids.pop(jid, None) is None:
            return []
        self.map.forget(jid)
        log.info("grid process {grid} is closing ({reason}); its regions will be reallocated",
                 grid=jid, reason=msg.reason or "no reason given")
        return self._forget_nodes(lambda n: n.grid == jid, "grid process closing", again=now)

    def _on_node_ready(self, now: float, sender: str, msg: pb.NodeReady) -> list[Envelope]:
        jid = bare(sender)
        node = next((n for n in self._nodes.values() if n.state == SPAWNING
                     and n.request == msg.request and n.grid == jid), None)
        if node is None:
            self._drops.drop(now, "GRID_NODE_READY for unknown request {request} from {sender}",
                             request=msg.request, sender=jid)
            return []
        if msg.refused:
            return self._forget_nodes(lambda n: n is node, msg.reason or "grid refused")
        node.enter(READY)
        node.id, node.key = msg.id, msg.key
        if self.shared:
            self.effects.append(Publish(node.alloc_key, self.jid, node.record()))
        log.info("grid node {id} on {grid} serves {region} (instance {instance})", id=node.id,
                 grid=jid, region=str(node.region), instance=node.instance)
        waiting, node.waiting = node.waiting, []
        return [self._accept(now, node, pending) for pending in waiting]

    # -- helpers -----------------------------------------------------------------------

    def _spawn(self, now: float, region: Region, instance: int, role: str,
               pending: _PendingLogin) -> list[Envelope]:
        node = self._nodes[(region, instance)] = _Node(
            region, instance, role, "", state=CLAIMING, requested_at=now, last_used=now,
            waiting=[pending])
        if self.shared:
            self.effects.append(Claim(node.alloc_key, self.jid, self.settings.spawn_timeout))
            return []
        return self._start_spawn(now, node)

    def _start_spawn(self, now: float, node: _Node) -> list[Envelope]:
        grids = [g for g in self._grids.values() if g.jid not in self.draining]
        if not grids:
            return self._forget_nodes(lambda n: n is node, "no grid process is available")
        grid = min(grids, key=lambda g: (
            sum(n.load + 1 for n in self._nodes.values() if n.grid == g.jid), g.jid))
        node.enter(SPAWNING)
        node.grid, node.request = grid.jid, next(self._requests)
        return [self._spawn_request(node)]

    def _spawn_request(self, node: _Node) -> Envelope:
        region = node.region
        spawn = pb.SpawnNode(request=node.request, worldpath=region.worldpath, gx=region.gx,
                             gy=region.gy, role=node.role, max_users=self.settings.max_users,
                             instance=node.instance)
        if region.size is not None:
            spawn.gsize = region.size
        return self._to(node.grid, spawn)

    def _forget_nodes(self, condition: Callable[[_Node], bool], reason: str,
                      again: float | None = None) -> list[Envelope]:
        """Drop the nodes; their waiting logins are refused, or routed ``again`` (at that
        time) when the node's grid process went away and another may serve them."""
        out, waiting = [], []
        for key, node in list(self._nodes.items()):
            if condition(node):
                del self._nodes[key]
                for user in [*node.joined, *node.present]:
                    if self._where.get(user) == key:
                        del self._where[user]
                self._release(node)
                waiting += node.waiting
        if again is None:
            return out + [self._refuse(p.client, p.request, reason) for p in waiting]
        for pending in waiting:
            out += self._place(again, pending)
        return out

    def _accept(self, now: float, node: _Node, pending: _PendingLogin) -> Envelope:
        self._visits += 1
        self.logins[("ok", "")] += 1
        key = (node.region, node.instance)
        expires = now + self.settings.ticket_lifetime
        if not pending.request.is_observer:
            # an observer's login (a client watching across a border) leaves the user
            # counted where it is; its ticket lets it observe, not count twice
            before = self._where.get(pending.client)
            if before is not None and before != key and before in self._nodes:
                self._nodes[before].joined.pop(pending.client, None)
                self._nodes[before].present.discard(pending.client)
            self._where[pending.client] = key
            if pending.client not in node.present:  # (else already among the agents)
                node.joined[pending.client] = expires
        node.last_used = now
        request = pending.request
        ticket = sign(self._ticket_secret, pending.client, node.id, node.key, expires,
                      self.jid, pending.role, issued=now)
        reply = pb.LoginReply(
            worldpath=request.worldpath, x=request.x, y=request.y, z=request.z,
            gk=node.key, gjid=node.grid, gid=node.id, gx=node.region.gx, gy=node.region.gy,
            is_grid=True, role=pending.role, online_user_num=node.agents,
            start_time=self._started, visits_since_start=self._visits,
            server_version=self.settings.server_version,
            client_version=self.settings.client_version,
            sk=self.sk, csk=request.csk, ticket=ticket,
        )
        if node.region.size is not None:
            reply.gsize = node.region.size
        if self.settings.interest_radius:
            reply.radius = self.settings.interest_radius
        return self._to(pending.client, reply)

    def _refuse(self, client: str, request: pb.Login, reason: str) -> Envelope:
        self.logins[("refused", reason.split("(")[0].split(":")[0].strip()[:48])] += 1
        log.info("login of {client} at {world} ({x:.2f}, {z:.2f}) refused: {reason}",
                 client=client, world=request.worldpath, x=request.x, z=request.z, reason=reason)
        reply = pb.LoginReply(worldpath=request.worldpath, x=request.x, y=request.y,
                              z=request.z, refused=True, reason=reason, sk=self.sk,
                              csk=request.csk, server_version=self.settings.server_version,
                              client_version=self.settings.client_version)
        return self._to(client, reply)

    def _to(self, recipient: str, message) -> Envelope:
        return Envelope(sender=self.jid, recipient=recipient, message=message)
