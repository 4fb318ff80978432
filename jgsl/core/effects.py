"""The cores' requests and records, as plain data: what they ask of the layers below.

Cores stay sans-IO: a gateway or grid core appends store and allocation requests to its
``effects`` list, and a region script's host calls become commands; the adapters run them
(jgsl.storage, jgsl.lua) and hand the outcomes back. Everything here is pure data, so those
layers depend on the cores and never the other way round.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from jgsl.wire import jgsl_pb2 as pb

#: The kinds of a node's edit logs.
LOG_KINDS = ("creations", "env")


# -- stored records --------------------------------------------------------------------


class BadValueError(ValueError):
    """A stored value that does not decode; the text says why."""


@dataclass(frozen=True)
class AgentRecord:
    """An agent as it left a world: absolute position and appearance."""

    x: float
    y: float
    z: float
    facing: int = 127
    asset_file: str = ""
    nickname: str = ""
    ccs: str = ""
    anim: str = ""
    scaling: int = 0

    def dumps(self) -> str:
        return json.dumps({"v": 1, **asdict(self)}, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> AgentRecord:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.pop("v", None) != 1:
                raise BadValueError("not a version 1 agent record")
            record = cls(**data)
            for name in ("x", "y", "z"):
                if not isinstance(getattr(record, name), int | float):
                    raise BadValueError(f"{name} is not a number")
            if not isinstance(record.facing, int) or not 0 <= record.facing <= 255:
                raise BadValueError("facing is not a byte")
            for name in ("asset_file", "nickname", "ccs", "anim"):
                if not isinstance(getattr(record, name), str):
                    raise BadValueError(f"{name} is not a string")
            return record
        except (ValueError, TypeError) as e:
            raise BadValueError(str(e)) from None

    def to_message(self, worldpath: str) -> pb.SavedAgent:
        return pb.SavedAgent(worldpath=worldpath, x=self.x, y=self.y, z=self.z,
                             facing=self.facing, asset_file=self.asset_file,
                             nickname=self.nickname, ccs=self.ccs, anim=self.anim,
                             scaling=self.scaling)


@dataclass(frozen=True)
class NodeRecord:
    grid: str
    id: int
    key: str
    role: str

    def dumps(self) -> str:
        return json.dumps([self.grid, self.id, self.key, self.role])

    @classmethod
    def loads(cls, text: str | None) -> NodeRecord | None:
        if not text:
            return None
        try:
            grid, node_id, key, role = json.loads(text)
            return cls(str(grid), int(node_id), str(key), str(role))
        except (ValueError, TypeError):
            return None


# -- store requests --------------------------------------------------------------------



@dataclass(frozen=True)
class SaveAgent:
    """Queue a write of the agent's state in a world."""

    worldpath: str
    user: str
    record: AgentRecord


@dataclass(frozen=True)
class LoadAgent:
    """Read the agent state saved for ``user`` in a world, to answer a ping (``reply_to``)."""

    worldpath: str
    user: str
    reply_to: str
    csk: str


@dataclass(frozen=True)
class SaveEdit:
    """Queue a write (``edit``) or delete (None) of one entry of a node's creation/env log."""

    node: str
    kind: str
    seq: int
    edit: pb.WorldEdit | None = field(compare=False)


@dataclass(frozen=True)
class LoadNode:
    """Read a node's logs before it starts; fails if the store cannot be reached."""

    node: str


@dataclass
class NodeLogs:
    """A node's stored logs: (seq, edit) ascending per kind."""

    creations: list[tuple[int, pb.WorldEdit]] = field(default_factory=list)
    env: list[tuple[int, pb.WorldEdit]] = field(default_factory=list)


@dataclass(frozen=True)
class SaveKey:
    """Queue a write of a script key; ``scope`` is "<worldpath>|<script module>"."""

    scope: str
    key: str
    value: str


@dataclass(frozen=True)
class LoadKey:
    """Read a script key for the script of grid node ``node``."""

    scope: str
    key: str
    node: int


StoreEffect = SaveAgent | LoadAgent | SaveEdit | LoadNode | SaveKey | LoadKey


# -- allocation requests (several gateways share a store) ------------------------------


@dataclass(frozen=True)
class Claim:
    key: str
    owner: str
    ttl: float


@dataclass(frozen=True)
class Lookup:
    key: str


@dataclass(frozen=True)
class Publish:
    key: str
    owner: str
    record: NodeRecord


@dataclass(frozen=True)
class Release:
    key: str
    owner: str
    record: NodeRecord | None


@dataclass(frozen=True)
class Restore:
    """Write a live node's record back after the store lost it (a Redis restarted empty):
    taken only if no other gateway claimed the region meanwhile."""

    key: str
    owner: str
    record: NodeRecord


Effect = Claim | Lookup | Publish | Release | Restore


@dataclass(frozen=True)
class Outcome:
    """The claim's owner (None if unclaimed) and the published record, if any."""

    owner: str | None
    record: NodeRecord | None


# -- a region script's commands (jgsl.lua.commands checks their arguments) -------------


class CommandError(ValueError):
    """A host call with bad arguments; becomes a Lua error at the script's call site."""


@dataclass(frozen=True)
class NpcSpawn:
    name: str
    fields: dict = field(hash=False)


@dataclass(frozen=True)
class NpcMove:
    name: str
    fields: dict = field(hash=False)


@dataclass(frozen=True)
class NpcRemove:
    name: str


@dataclass(frozen=True)
class SendMessage:
    to: str
    type: str
    body: bytes
    #: Who speaks (an NPC's name), or "" for the region.
    speaker: str = ""


@dataclass(frozen=True)
class BroadcastEnv:
    kind: str
    params: dict = field(hash=False)


@dataclass(frozen=True)
class SetField:
    jid: str
    name: str
    value: object


@dataclass(frozen=True)
class Kick:
    jid: str
    reason: str


@dataclass(frozen=True)
class StoreKey:
    key: str
    #: The value as JSON text.
    value: str


Command = NpcSpawn | NpcMove | NpcRemove | SendMessage | BroadcastEnv | SetField | Kick | StoreKey
