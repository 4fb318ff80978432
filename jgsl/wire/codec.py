"""Stanza <-> typed message: the only module that turns XML into messages, or base64.

(Splitting a stream into stanzas is the stream reader's job, jgsl.xmpp.stanzas; it hands
this module either a domish tree or, for a plain JGSL message, a L{PlainJgsl}.)

One JGSL message travels as one XMPP ``<message/>`` stanza holding one child element
``<jgsl xmlns='urn:xmpp:jgsl:0' t='TYPE'>BASE64(protobuf)</jgsl>``. Ordinary chat
(``<message type='chat'><body/></message>``) decodes to L{Chat}, for emulated users'
auto-replies.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message
from twisted.words.xish import domish

from jgsl.wire.messages import class_of, type_of

NS_JGSL = "urn:xmpp:jgsl:0"
NS_PING = "urn:xmpp:ping"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
#: Bounce conditions that mean the addressee is not connected to the XMPP server.
UNREACHABLE = frozenset({"service-unavailable", "recipient-unavailable", "item-not-found",
                         "remote-server-not-found", "remote-server-timeout"})
#: Largest serialized protobuf accepted or sent (a join snapshot is split below this).
MAX_PAYLOAD_BYTES = 48 * 1024
_MAX_B64_CHARS = 4 * ((MAX_PAYLOAD_BYTES + 2) // 3)


MAX_CHAT_CHARS = 4096


class CodecError(ValueError):
    """A stanza that does not carry a valid JGSL message; the text says why."""


@dataclass(frozen=True, slots=True)
class Chat:
    """A plain XMPP chat message (not a JGSL message)."""

    body: str


@dataclass(frozen=True, slots=True)
class XmppPing:
    """An XEP-0199 ping (``<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>``)."""

    id: str


@dataclass(frozen=True, slots=True)
class XmppPong:
    """The answer to an L{XmppPing}: the pinged entity is connected (``<iq type='result'/>``)."""

    id: str


@dataclass(frozen=True, slots=True)
class Bounce:
    """An error the XMPP server (or the addressee) returned for something we sent.

    The envelope's sender is whom we wrote to: ``service-unavailable`` from the server means
    it is not connected. ``original`` is what we sent, when the bounce carries it back
    (a JGSL message, or the L{XmppPing}), else None.
    """

    condition: str
    original: object = None

    @property
    def unreachable(self) -> bool:
        """Does the condition mean the addressee is not connected (not a refusal)?"""
        return self.condition in UNREACHABLE


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded message with its addressing: what the cores consume and produce."""

    sender: str
    recipient: str
    message: Message


_SPECIAL = frozenset("&<>'\"")


def _attr(value: str) -> str:
    if _SPECIAL.isdisjoint(value):  # (nearly every JID: one scan instead of five)
        return value
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
        .replace("'", "&apos;").replace('"', "&quot;")


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def encode(message: Message | Chat | XmppPing | XmppPong, recipient: str,
           sender: str | None = None) -> str:
    """The serialized ``<message/>`` stanza for ``message``, as text (see L{encode_bytes})."""
    return encode_bytes(message, recipient, sender).decode("utf-8")


def encode_bytes(message: Message | Chat | XmppPing | XmppPong, recipient: str,
                 sender: str | None = None) -> bytes:
    """The serialized ``<message/>`` stanza for ``message``, as the bytes a stream writes.

    Written directly: building a domish tree only to serialize it again cost a grid
    process about a tenth of its time per update, and the base64 payload never becomes a
    str. The stanza carries no namespace of its own, so it takes the stream's
    (jabber:component:accept or jabber:client).
    """
    sender_attr = f" from='{_attr(sender)}'" if sender else ""
    if not isinstance(message, Message):  # (one check for nearly every stanza)
        return _plain(message, _attr(recipient), sender_attr).encode("utf-8")
    payload = message.SerializeToString()
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CodecError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return b"".join((
        f"<message to='{_attr(recipient)}'{sender_attr} type='normal'>"
        f"<jgsl xmlns='{NS_JGSL}' t='{type_of(message)}'>".encode(),
        binascii.b2a_base64(payload, newline=False), b"</jgsl></message>"))


def _plain(message: Chat | XmppPing | XmppPong, to: str, sender_attr: str) -> str:
    """Chat and XEP-0199 stanzas."""
    if isinstance(message, Chat):
        return (f"<message to='{to}'{sender_attr} type='chat'><body>"
                f"{_text(message.body[:MAX_CHAT_CHARS])}</body></message>")
    if isinstance(message, XmppPing):
        return (f"<iq type='get' id='{_attr(message.id)}' to='{to}'{sender_attr}>"
                f"<ping xmlns='{NS_PING}'/></iq>")
    return f"<iq type='result' id='{_attr(message.id)}' to='{to}'{sender_attr}/>"


def parse(xml: str | bytes, namespace: str = "jabber:component:accept") -> domish.Element:
    """One serialized stanza back as an element, as the far end of a stream reads it."""
    parsed: list[domish.Element] = []
    stream = domish.elementStream()
    stream.DocumentStartEvent = lambda root: None
    stream.ElementEvent = parsed.append
    stream.DocumentEndEvent = lambda: None
    stream.parse(f"<stream xmlns='{namespace}'>".encode())
    stream.parse(xml.encode("utf-8") if isinstance(xml, str) else xml)
    if len(parsed) != 1:
        raise CodecError(f"expected one stanza, found {len(parsed)}")
    return parsed[0]


def decode(stanza: domish.Element) -> Envelope:
    """Parse a ``<message/>`` (or ping ``<iq/>``) stanza into an L{Envelope}; raise
    L{CodecError} if it is bad."""
    if stanza.name != "message":
        if stanza.name == "iq":
            return _iq(stanza)
        raise CodecError(f"not a message stanza: <{stanza.name}>")
    attributes = stanza.attributes  # (read directly: every stanza asks four times)
    kind = attributes.get("type")
    children = [c for c in stanza.children
                if getattr(c, "name", None) == "jgsl" and c.uri == NS_JGSL]
    if kind == "error":
        original = None
        if len(children) == 1:
            try:
                original = _jgsl(children[0])
            except CodecError:
                pass  # still a bounce: of something we cannot read back
        return _bounce(stanza, original)
    if not children and kind == "chat":
        return _chat(stanza)
    if len(children) != 1:
        raise CodecError(f"expected one jgsl element, found {len(children)}")
    message = _jgsl(children[0])
    sender = attributes.get("from", "")
    recipient = attributes.get("to", "")
    if not sender:
        raise CodecError("stanza has no sender")
    return Envelope(sender=sender, recipient=recipient, message=message)


def _jgsl(child: domish.Element) -> Message:
    """The message a ``<jgsl/>`` element carries."""
    return _payload(child.attributes.get("t"), str(child))


def _payload(type_attr: str | None, text: str) -> Message:
    """The message of a ``<jgsl/>`` element's ``t`` attribute and text (both paths)."""
    try:
        type_id = int(type_attr or "")
    except ValueError:
        raise CodecError(f"bad type attribute {type_attr!r}") from None
    try:
        cls = class_of(type_id)
    except KeyError:
        raise CodecError(f"unknown message type {type_id}") from None
    text = text.strip()
    if len(text) > _MAX_B64_CHARS:
        raise CodecError(f"payload of {len(text)} base64 characters is over the limit")
    try:
        payload = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as e:
        raise CodecError(f"payload is not base64: {e}") from None
    try:
        return cls.FromString(payload)
    except DecodeError as e:
        raise CodecError(f"payload is not a valid {cls.__name__}: {e}") from None


class PlainJgsl:
    """What a stream reader saw of a plain JGSL stanza, without building a tree.

    A ``<message/>`` in the stream's namespace, not of type error, whose only child element
    is one ``<jgsl/>`` in our namespace holding only text: its attributes, the child's ``t``
    and its text. Any other shape goes the generic way (L{parse}, L{decode}), which reads
    it the same (tests/test_codec.py checks both ways on the same bytes).
    """

    __slots__ = ("attributes", "type_attr", "text")

    def __init__(self, attributes: dict[str, str], type_attr: str | None, text: str) -> None:
        self.attributes, self.type_attr, self.text = attributes, type_attr, text


def decode_plain(stanza: PlainJgsl) -> Envelope:
    """The L{Envelope} of a plain JGSL stanza (the fast path); L{CodecError} if it is bad."""
    attributes = stanza.attributes
    message = _payload(stanza.type_attr, stanza.text)
    sender = attributes.get("from", "")
    if not sender:
        raise CodecError("stanza has no sender")
    return Envelope(sender=sender, recipient=attributes.get("to", ""), message=message)


def _addressed(stanza: domish.Element, message: object) -> Envelope:
    sender = stanza.getAttribute("from", "")
    if not sender:
        raise CodecError("stanza has no sender")
    return Envelope(sender=sender, recipient=stanza.getAttribute("to", ""), message=message)


def _bounce(stanza: domish.Element, original: object) -> Envelope:
    """An error stanza: its condition (the first child of ``<error/>`` in the stanzas
    namespace), and what we had sent if it came back with it."""
    condition = "undefined-condition"
    for error in (e for e in stanza.elements() if e.name == "error"):
        for child in error.elements(NS_STANZAS):
            if child.name != "text":
                condition = child.name
                break
        break
    return _addressed(stanza, Bounce(condition[:64], original))


def _iq(stanza: domish.Element) -> Envelope:
    """XEP-0199 pings and their answers; any other iq is not for JGSL."""
    kind, iq_id = stanza.getAttribute("type"), stanza.getAttribute("id", "")
    if kind == "get" and any(c.name == "ping" for c in stanza.elements(NS_PING)):
        return _addressed(stanza, XmppPing(iq_id[:128]))
    if kind == "result":
        return _addressed(stanza, XmppPong(iq_id[:128]))
    if kind == "error":
        return _bounce(stanza, XmppPing(iq_id[:128]))
    raise CodecError(f"unsupported iq ({kind})")


def _chat(stanza: domish.Element) -> Envelope:
    bodies = [str(b) for b in stanza.elements() if b.name == "body"]
    if not bodies or not stanza.getAttribute("from"):
        raise CodecError("chat message without body or sender")
    if len(bodies[0]) > MAX_CHAT_CHARS:
        raise CodecError(f"chat body longer than {MAX_CHAT_CHARS} characters")
    return Envelope(stanza["from"], stanza.getAttribute("to", ""), Chat(bodies[0]))


def presence() -> domish.Element:
    """Initial presence, which a c2s client sends once signed in."""
    return domish.Element((None, "presence"))
