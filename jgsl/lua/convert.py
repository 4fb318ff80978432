"""Protobuf messages <-> Lua tables, driven by the message descriptors.

Messages become plain data (then one Lua table): every singular scalar with its value (the
default when unset, as Lua has no "unset" for proto3 scalars), message fields when set,
repeated fields as sequences, maps as tables, enums by name, bytes as Lua strings. Going
back, every key must name a field and every value must fit it; the error names the message
and the field path (``jgsl.game.Say.text: expected string, got number``).
"""

from __future__ import annotations

import math

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from jgsl.lua.sandbox import ConversionError, to_python

_INTS = {FieldDescriptor.TYPE_INT32: (-2**31, 2**31 - 1),
         FieldDescriptor.TYPE_SINT32: (-2**31, 2**31 - 1),
         FieldDescriptor.TYPE_SFIXED32: (-2**31, 2**31 - 1),
         FieldDescriptor.TYPE_INT64: (-2**63, 2**63 - 1),
         FieldDescriptor.TYPE_SINT64: (-2**63, 2**63 - 1),
         FieldDescriptor.TYPE_SFIXED64: (-2**63, 2**63 - 1),
         FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
         FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
         FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
         FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1)}
_FLOATS = (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE)


class FieldError(ValueError):
    """A Lua table that does not fit a message; the text names the message and field."""


# -- protobuf -> Lua ---------------------------------------------------------------------


def message_to_data(message: Message) -> dict:
    """A message as plain Python data ready for ``LuaVM.table``."""
    out: dict = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _value_to_data(value_field, v) for k, v in value.items()}
        elif field.is_repeated:
            out[field.name] = [_value_to_data(field, v) for v in value]
        elif field.type == FieldDescriptor.TYPE_MESSAGE or field.has_presence:
            if message.HasField(field.name):
                out[field.name] = _value_to_data(field, value)
        else:
            out[field.name] = _value_to_data(field, value)
    return out


def _value_to_data(field: FieldDescriptor, value):
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return message_to_data(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        number = field.enum_type.values_by_number.get(value)
        return number.name if number is not None else value
    return value


def _is_map(field: FieldDescriptor) -> bool:
    return (field.type == FieldDescriptor.TYPE_MESSAGE
            and field.message_type.GetOptions().map_entry)


# -- Lua -> protobuf ---------------------------------------------------------------------


def table_to_message(table, cls: type[Message]) -> Message:
    """Build a ``cls`` from a Lua table (or plain data); FieldError names what is wrong."""
    name = cls.DESCRIPTOR.full_name
    try:
        data = to_python(table)
    except ConversionError as e:
        raise FieldError(f"{name}: {e}") from None
    message = cls()
    _fill(message, data, name)
    return message


def _fill(message: Message, data, path: str) -> None:
    descriptor: Descriptor = message.DESCRIPTOR
    if data == [] or data is None:
        data = {}  # an empty Lua table
    if not isinstance(data, dict):
        raise FieldError(f"{path}: expected a table, got {_kind(data)}")
    for key, value in data.items():
        field = descriptor.fields_by_name.get(key) if isinstance(key, str) else None
        if field is None:
            raise FieldError(f"{path}: no field {key!r}")
        where = f"{path}.{key}"
        if _is_map(field):
            _fill_map(getattr(message, key), field, value, where)
        elif field.is_repeated:
            items = [] if value == {} else value
            if not isinstance(items, list):
                raise FieldError(f"{where}: expected a sequence, got {_kind(value)}")
            target = getattr(message, key)
            for i, item in enumerate(items, 1):
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    _fill(target.add(), item, f"{where}[{i}]")
                else:
                    target.append(_scalar(field, item, f"{where}[{i}]"))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, key).SetInParent()  # an empty table still sets the field
            _fill(getattr(message, key), value, where)
        else:
            setattr(message, key, _scalar(field, value, where))


def _fill_map(target, field: FieldDescriptor, value, where: str) -> None:
    if value == []:
        value = {}
    if not isinstance(value, dict):
        raise FieldError(f"{where}: expected a table, got {_kind(value)}")
    key_field = field.message_type.fields_by_name["key"]
    value_field = field.message_type.fields_by_name["value"]
    for k, v in value.items():
        k = _scalar(key_field, k, f"{where} key")
        if value_field.type == FieldDescriptor.TYPE_MESSAGE:
            _fill(target[k], v, f"{where}[{k!r}]")
        else:
            target[k] = _scalar(value_field, v, f"{where}[{k!r}]")


def _scalar(field: FieldDescriptor, value, where: str):
    kind = field.type
    if kind == FieldDescriptor.TYPE_BOOL:
        if isinstance(value, bool):
            return value
        raise FieldError(f"{where}: expected boolean, got {_kind(value)}")
    if kind == FieldDescriptor.TYPE_STRING:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise FieldError(f"{where}: not valid UTF-8 (use a bytes field)") from None
            return value
        raise FieldError(f"{where}: expected string, got {_kind(value)}")
    if kind == FieldDescriptor.TYPE_BYTES:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        raise FieldError(f"{where}: expected string (bytes), got {_kind(value)}")
    if kind == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        if isinstance(value, str) and value in enum.values_by_name:
            return enum.values_by_name[value].number
        names = ", ".join(v.name for v in enum.values)
        raise FieldError(f"{where}: expected one of {names}, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(f"{where}: expected number, got {_kind(value)}")
    if kind in _FLOATS:
        if not math.isfinite(value) and kind == FieldDescriptor.TYPE_FLOAT:
            raise FieldError(f"{where}: {value} is not a finite number")
        return float(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise FieldError(f"{where}: expected integer, got {value}")
        value = int(value)
    low, high = _INTS[kind]
    if not low <= value <= high:
        raise FieldError(f"{where}: {value} is out of range {low}..{high}")
    return value


def _kind(value) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str | bytes):
        return "string"
    return "table"
