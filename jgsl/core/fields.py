"""Agent fields: quantization (which doubles as a dead-band) and per-field change histories.

Both ends of the delta protocol keep, for every field of an agent, the newest encoded value
and the frame at which it changed (the original ValueTracker, of which only the newest slot
ever mattered). A reader that echoes frame ``t`` gets exactly the fields changed after ``t``.
"""

from __future__ import annotations

import math

from jgsl.wire import jgsl_pb2 as pb

#: Fields an agent needs before others can draw it (the original IsIntact()).
REQUIRED: tuple[str, ...] = ("asset_file", "rx", "y", "rz")
#: Opcode of every field in an agent table; 1 is the agent's name (the original's unused jid).
OPCODES: dict[str, int] = {"name": 1, **{f.name: f.number for f in pb.AgentState.DESCRIPTOR.fields}}
#: Integer fields, which may travel as deltas against an acknowledged value.
NUMERIC: tuple[str, ...] = ("rx", "y", "rz", "facing", "scaling")
#: The same as a set (and MAPPED_SET below), for the hot paths that ask it of every field.
NUMERIC_SET: frozenset[str] = frozenset(NUMERIC)
#: String fields with a string map (jgsl.core.stringmaps).
MAPPED: tuple[str, ...] = ("asset_file", "ccs", "anim")
MAPPED_SET: frozenset[str] = frozenset(MAPPED)

POSITION_QUANTUM = 0.01
#: Largest position accepted, in world units (keeps quantized values inside sint32).
MAX_COORDINATE = 10_000_000.0
MAX_STRING = 256


def encode_position(value: float) -> int:
    """World units -> hundredths (the original's ``%.2f``)."""
    return round(value / POSITION_QUANTUM)


def decode_position(value: int) -> float:
    return value * POSITION_QUANTUM


def encode_facing(radians: float) -> int:
    """Facing -> one byte over [-pi, pi], normalized first (the original was not)."""
    wrapped = math.remainder(radians, math.tau)  # in [-pi, pi]
    return min(255, max(0, round((wrapped + math.pi) / math.tau * 255)))


def decode_facing(byte: int) -> float:
    return -math.pi + math.tau * byte / 255


def valid_coordinate(value: float) -> bool:
    return math.isfinite(value) and abs(value) <= MAX_COORDINATE


class FieldHistory:
    """Newest value and change frame of each field of one agent."""

    __slots__ = ("_fields",)

    def __init__(self) -> None:
        self._fields: dict[str, tuple[int, object]] = {}  # name -> (frame, value)

    def push(self, values: dict[str, object], frame: int) -> dict[str, object]:
        """Record every field of ``values`` that differs from the stored one; those fields."""
        fields, changed = self._fields, {}
        for name, value in values.items():
            current = fields.get(name)
            if current is None or current[1] != value:
                fields[name] = (frame, value)
                changed[name] = value
        return changed

    def since(self, frame: int) -> dict[str, object]:
        """The fields changed after ``frame`` (AgentState field -> value)."""
        return {name: value for name, (at, value) in self._fields.items() if at > frame}
