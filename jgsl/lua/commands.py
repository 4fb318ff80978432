"""The outbox: what a script asks of the grid node, checked when it asks.

Scripts never touch the network or storage. Each host function they call checks its
arguments at once (so a mistake is a Lua error at the line that made it) and appends one of
these commands; the grid node applies them after the hook returns (jgsl.lua.regions).
"""

from __future__ import annotations

import json
import math

from jgsl.core.effects import (
    BroadcastEnv,
    CommandError,
    StoreKey,
)
from jgsl.core.fields import MAX_STRING
from jgsl.core.safetext import text_problem

#: NPC / agent fields a script may set, and whether each is a number or a string.
AGENT_FIELDS = {"x": float, "y": float, "z": float, "facing": float, "scaling": float,
                "asset": str, "nickname": str, "anim": str, "ccs": str}
MAX_KEY_BYTES = 64 * 1024
MAX_NAME = 64


def text(value, what: str, limit: int = MAX_STRING) -> str:
    if not isinstance(value, str):
        raise CommandError(f"{what} must be a string")
    if len(value) > limit:
        raise CommandError(f"{what} is longer than {limit} characters")
    problem = text_problem(value)
    if problem:
        raise CommandError(f"{what} {problem}")
    return value


def npc_name(value) -> str:
    name = text(value, "the NPC name", MAX_NAME)
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise CommandError(f"NPC name {name!r}: use letters, digits, '-' and '_'")
    return name


def agent_fields(data, required: tuple[str, ...] = ()) -> dict:
    """Checked NPC/agent fields from a script table ({x=, y=, z=, facing=, asset=, ...})."""
    if data is None or data == []:
        data = {}
    if not isinstance(data, dict):
        raise CommandError("fields must be a table")
    for name in required:
        if name not in data:
            raise CommandError(f"field {name!r} is required")
    out = {}
    for name, value in data.items():
        kind = AGENT_FIELDS.get(name)
        if kind is None:
            raise CommandError(f"no agent field {name!r} (fields: {', '.join(AGENT_FIELDS)})")
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or abs(value) > 1e7:
                raise CommandError(f"field {name!r} must be a number within ±1e7")
            out[name] = float(value)
        else:
            out[name] = text(value, f"field {name!r}")
    return out


def key_value(key, value) -> StoreKey:
    key = text(key, "the key", 200)
    try:
        encoded = json.dumps(value, allow_nan=False, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as e:
        raise CommandError(f"storeKey({key!r}): the value must be plain data ({e})") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise CommandError(f"storeKey({key!r}): the value is over {MAX_KEY_BYTES} bytes")
    return StoreKey(key, encoded)


def env_params(kind, params) -> BroadcastEnv:
    kind = text(kind, "the env kind", MAX_NAME)
    if params is None or params == []:
        params = {}
    if not isinstance(params, dict):
        raise CommandError("env params must be a table of strings")
    checked = {}
    for k, v in params.items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            v = repr(v)
        checked[text(k, "an env param name", MAX_NAME)] = text(v, f"env param {k!r}")
    return BroadcastEnv(kind, checked)
