"""A fully populated instance of every registered message, for round-trip tests."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from jgsl.wire.messages import REGISTRY


def fill(message: Message, depth: int = 0) -> Message:
    """Set every field of ``message`` (recursively) to a distinctive non-default value."""
    for n, field in enumerate(message.DESCRIPTOR.fields, 1):
        repeated = field.is_repeated
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                getattr(message, field.name)["k"] = "v\u00e9,"
            elif repeated:
                fill(getattr(message, field.name).add(), depth + 1)
            else:
                fill(getattr(message, field.name), depth + 1)
            continue
        value = _scalar(field, n + depth)
        if repeated:
            getattr(message, field.name).extend([value, value])
        else:
            setattr(message, field.name, value)
    return message


def _scalar(field: FieldDescriptor, n: int):
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return f"s{n}, \u4f60\u597d <&>"
    if t == FieldDescriptor.TYPE_BYTES:
        return bytes([n, 0, 255])
    if t == FieldDescriptor.TYPE_BOOL:
        return True
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return n + 0.5
    if t in (FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_INT32,
             FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_INT64):
        return -n * 1000
    if t == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values[-1].number
    return n * 1000


def samples() -> list[Message]:
    return [fill(cls()) for cls in REGISTRY.values()]
