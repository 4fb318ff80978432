"""What JGSL persists, as plain data: stored records and the store requests cores emit.

Cores stay sans-IO: a grid or gateway core appends these requests to its ``effects`` list;
the link runs them against L{jgsl.storage.store.Store} and hands results back. Values are
JSON text so both backends (Redis, the embedded snapshot) store the same strings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from jgsl.wire import jgsl_pb2 as pb

#: Hash names (Redis: ``jgsl:`` + name; embedded: the snapshot's keys).
AGENTS = "agents:"  # + worldpath; field: bare user JID; value: AgentRecord JSON
NODE = "node:"  # + node name + ":creations" or ":env"; field: log seq; value: edit JSON
KEYS = "keys:"  # + scope; field: key; value: the string (Lua script keys)
LOG_KINDS = ("creations", "env")


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


def dump_edit(edit: pb.WorldEdit) -> str:
    return json.dumps({"kind": edit.kind, "params": dict(edit.params), "author": edit.author,
                       "seq": edit.seq}, separators=(",", ":"))


def load_edit(text: str) -> pb.WorldEdit:
    try:
        data = json.loads(text)
        params = data["params"]
        if not isinstance(params, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
            raise BadValueError("params is not a map of strings")
        return pb.WorldEdit(kind=data["kind"], params=params, author=data["author"],
                            seq=int(data["seq"]))
    except (ValueError, TypeError, KeyError) as e:
        raise BadValueError(f"{type(e).__name__}: {e}") from None


# -- requests cores emit ---------------------------------------------------------------


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
