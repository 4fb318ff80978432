"""The one registry of game message payloads (protocol/game.proto), by name.

A CS_GameMessage / SC_GameMessage carries ``type`` (a name registered here) and ``body`` (that
message, serialized). Scripts name types the same way: ``send(jid, "Say", {text = "hi"})``.
To add a payload: declare it in protocol/game.proto, run ``./dev proto``, list it below.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError, Message

from jgsl.wire import game_pb2

PAYLOADS: dict[str, type[Message]] = {
    cls.DESCRIPTOR.name: cls for cls in (game_pb2.Say, game_pb2.Greeting, game_pb2.Emote)
}


class UnknownPayloadError(KeyError):
    """A game message type that is not registered."""


def payload_class(name: str) -> type[Message]:
    try:
        return PAYLOADS[name]
    except KeyError:
        raise UnknownPayloadError(name) from None


def decode_payload(name: str, body: bytes) -> Message:
    """The payload of a game message; UnknownPayloadError or DecodeError if it is bad."""
    message = payload_class(name)()
    message.ParseFromString(body)
    return message


__all__ = ["PAYLOADS", "DecodeError", "UnknownPayloadError", "decode_payload", "payload_class"]
