"""How JGSL lays its records out in a store: hash names and the edit logs' JSON text.

The records and requests themselves are the cores' (jgsl.core.effects). Values are JSON text
so both backends (Redis, the embedded snapshot) store the same strings.
"""

from __future__ import annotations

import json

from jgsl.core.effects import BadValueError
from jgsl.wire import jgsl_pb2 as pb

#: Hash names (Redis: ``jgsl:`` + name; embedded: the snapshot's keys).
AGENTS = "agents:"  # + worldpath; field: bare user JID; value: AgentRecord JSON
NODE = "node:"  # + node name + ":creations" or ":env"; field: log seq; value: edit JSON
KEYS = "keys:"  # + scope; field: key; value: the string (Lua script keys)


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


