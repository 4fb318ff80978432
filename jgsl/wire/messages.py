"""The one registry of JGSL messages: type id <-> protobuf class, and a readable dump."""

from __future__ import annotations

from google.protobuf import text_format
from google.protobuf.message import Message

from jgsl.wire import jgsl_pb2 as pb

MessageType = pb.MessageType
#: Protocol versions this code speaks (CS_Login / SC_Login_Reply ``*_version``).
SERVER_VERSION = 1
CLIENT_VERSION = 1

#: Type id -> message class. The ids are the original JGSL ones (see protocol/jgsl.proto).
REGISTRY: dict[int, type[Message]] = {
    pb.CS_PING: pb.Ping,
    pb.SC_PING_REPLY: pb.PingReply,
    pb.CS_Login: pb.Login,
    pb.SC_Login_Reply: pb.LoginReply,
    pb.CS_Logout: pb.Logout,
    pb.SC_Closing: pb.Closing,
    pb.CS_NormalUpdate: pb.NormalUpdate,
    pb.SC_NormalUpdate: pb.NormalUpdateReply,
    pb.CS_ObserverUpdate: pb.ObserverUpdate,
    pb.CS_QUERY: pb.Query,
    pb.SC_QUERY_REPLY: pb.QueryReply,
    pb.CS_GameMessage: pb.GameMessage,
    pb.SC_GameMessage: pb.ServerGameMessage,
    pb.GRID_HELLO: pb.GridHello,
    pb.GRID_SPAWN_NODE: pb.SpawnNode,
    pb.GRID_NODE_READY: pb.NodeReady,
    pb.GRID_CLOSE_NODE: pb.CloseNode,
    pb.ADMIN_SHUTDOWN: pb.AdminShutdown,
    pb.ADMIN_RELOAD: pb.AdminReload,
    pb.ADMIN_RELOAD_REPLY: pb.AdminReloadReply,
    pb.GRID_CLOSING: pb.GridClosing,
    pb.GRID_MAP_REQUEST: pb.MapRequest,
    pb.GRID_MAP_REPORT: pb.MapReport,
    pb.ADMIN_COMMAND: pb.AdminCommand,
    pb.ADMIN_COMMAND_REPLY: pb.AdminCommandReply,
}

_TYPE_OF: dict[str, int] = {cls.DESCRIPTOR.full_name: type_id for type_id, cls in REGISTRY.items()}
#: Sent, never received: the grid's writing view of SC_NormalUpdate (the same bytes).
_TYPE_OF[pb.NormalUpdateReplyOut.DESCRIPTOR.full_name] = pb.SC_NormalUpdate


class UnknownMessageTypeError(KeyError):
    """A type id or message class that is not in the registry."""


def type_of(message: Message) -> int:
    """The wire type id of a message instance."""
    try:
        return _TYPE_OF[message.DESCRIPTOR.full_name]
    except KeyError:
        raise UnknownMessageTypeError(message.DESCRIPTOR.full_name) from None


def class_of(type_id: int) -> type[Message]:
    """The message class registered for a wire type id."""
    try:
        return REGISTRY[type_id]
    except KeyError:
        raise UnknownMessageTypeError(type_id) from None


def type_name(type_id: int) -> str:
    """The original name of a type id (``CS_NormalUpdate``), or ``type<N>`` if unknown."""
    try:
        return MessageType.Name(type_id)
    except ValueError:
        return f"type{type_id}"


def wire_name(cls: type) -> str:
    """What a message class is called on the wire (NormalUpdate: CS_NormalUpdate); other
    classes (Chat, XmppPing, Bounce) by their own name. For metrics and dump filters."""
    descriptor = getattr(cls, "DESCRIPTOR", None)
    type_id = _TYPE_OF.get(descriptor.full_name) if descriptor is not None else None
    return type_name(type_id) if type_id is not None else cls.__name__


def describe(message: Message) -> str:
    """One line naming the message type and every set field, for the message dumps."""
    if not isinstance(message, Message):
        return repr(message)  # a chat message
    message = readable(message)
    fields = text_format.MessageToString(message, as_one_line=True, as_utf8=True)
    return f"{type_name(type_of(message))} {{{fields}}}"


def readable(message: Message) -> Message:
    """The message as its receiver reads it: a grid's L{pb.NormalUpdateReplyOut} as the
    NormalUpdateReply it encodes (its agent table decoded), anything else as it is."""
    if isinstance(message, pb.NormalUpdateReplyOut):
        return pb.NormalUpdateReply.FromString(message.SerializeToString())
    return message
