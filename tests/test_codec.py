"""The stanza codec: every message round-trips; bad input raises CodecError, nothing else.

Every test that reads bytes reads them both ways a component can (the ``read`` fixture): the
generic domish tree, and the fast path of jgsl.xmpp.stanzas with jgsl.wire.codec's
L{decode_plain}; a property test shows the two agree on the same bytes.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.words.xish import domish

from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import (
    MAX_PAYLOAD_BYTES,
    NS_JGSL,
    Bounce,
    Chat,
    CodecError,
    Envelope,
    XmppPing,
    XmppPong,
    decode,
    encode,
    parse,
)
from jgsl.wire.messages import REGISTRY, describe, type_of
from tests.paths import both, fast, generic
from tests.samples import samples


@pytest.fixture(params=["generic", "fast"])
def read(request):
    """Bytes to an envelope (or ("CodecError", text)) one of the two ways."""
    if request.param == "generic":
        return generic
    return lambda xml: fast(xml)[0]


def refused(result, reason: str) -> bool:
    import re

    return isinstance(result, tuple) and result[0] == "CodecError" \
        and re.search(reason, result[1]) is not None


@pytest.mark.parametrize("message", samples(), ids=lambda m: type(m).__name__)
def test_round_trip_every_type(message, read):
    """Every registered type, with every field set, survives encode -> XML -> decode, and
    a component reads it on the fast path."""
    xml = encode(message, "grid1.localhost", "alice@emu.localhost/r")
    envelope = read(xml)
    assert fast(xml)[1] == "fast"
    assert envelope.message == message
    assert type(envelope.message) is type(message)
    assert envelope.sender == "alice@emu.localhost/r"
    assert envelope.recipient == "grid1.localhost"


def test_type_ids_are_the_original_ones():
    """The wire ids of the original messages are JGSL_msg_def.lua's."""
    expected = {pb.Ping: 1, pb.PingReply: 2, pb.Login: 3, pb.LoginReply: 4, pb.Logout: 5,
                pb.Closing: 6, pb.NormalUpdate: 7, pb.NormalUpdateReply: 8,
                pb.ObserverUpdate: 9, pb.Query: 11, pb.QueryReply: 12}
    for cls, type_id in expected.items():
        assert type_of(cls()) == type_id
        assert REGISTRY[type_id] is cls
    assert pb.MessageType.Name(3) == "CS_Login"


def test_grid_reply_view_is_the_reply_on_the_wire():
    """NormalUpdateReplyOut (the grid's writing view, its table pre-encoded) has every field
    of NormalUpdateReply but the table as bytes, and is read as NormalUpdateReply."""
    def fields(cls):
        return {f.name: (f.number, f.type, f.is_repeated) for f in cls.DESCRIPTOR.fields}

    reply, view = fields(pb.NormalUpdateReply), fields(pb.NormalUpdateReplyOut)
    assert view.pop("agents")[:2] == (5, pb.NormalUpdateReply.DESCRIPTOR.fields_by_name[
        "agents"].TYPE_BYTES)
    assert reply.pop("agents")[0] == 5 and view == reply
    full = next(m for m in samples() if isinstance(m, pb.NormalUpdateReply))
    assert full.agents.slots  # (the sample has a table)
    out = pb.NormalUpdateReplyOut.FromString(full.SerializeToString())
    assert out.agents == full.agents.SerializeToString()
    envelope = decode(parse(encode(out, "alice@emu.localhost", "grid1.localhost")))
    assert type(envelope.message) is pb.NormalUpdateReply and envelope.message == full
    assert describe(out) == describe(full)


def test_stanza_shape():
    """One <message/> holding one <jgsl/> in our namespace with the type id and base64."""
    stanza = parse(encode(pb.Ping(csk="abc"), "gateway.localhost", "bob@emu.localhost"))
    assert stanza.name == "message" and stanza["type"] == "normal"
    (child,) = list(stanza.elements())
    assert (child.uri, child.name, child["t"]) == (NS_JGSL, "jgsl", "1")
    assert pb.Ping.FromString(base64.b64decode(str(child))) == pb.Ping(csk="abc")


def test_describe_names_type_and_fields():
    text = describe(pb.Login(worldpath="worlds/A/", x=1.5))
    assert text.startswith("CS_Login {") and 'worldpath: "worlds/A/"' in text and "x: 1.5" in text


def _stanza(t="1", content="", sender="a@b", name="jgsl", ns=NS_JGSL, kind=None):
    stanza = domish.Element((None, "message"))
    stanza["to"] = "gateway.localhost"
    if sender:
        stanza["from"] = sender
    if kind:
        stanza["type"] = kind
    child = stanza.addElement((ns, name))
    if t is not None:
        child["t"] = t
    child.addContent(content)
    return stanza


@pytest.mark.parametrize(
    "stanza, reason",
    [
        (_stanza(t="99"), "unknown message type 99"),
        (_stanza(t="x"), "bad type attribute"),
        (_stanza(t=None), "bad type attribute"),
        (_stanza(content="!!not base64!!"), "not base64"),
        (_stanza(t="7", content=base64.b64encode(b"\xff\xff\xff").decode()), "not a valid"),
        (_stanza(ns="urn:other"), "expected one jgsl element, found 0"),
        (_stanza(sender=""), "no sender"),
        (_stanza(content="A" * (MAX_PAYLOAD_BYTES * 2)), "over the limit"),
    ],
)
def test_malformed_input_is_a_codec_error(stanza, reason, read):
    with pytest.raises(CodecError, match=reason):
        decode(stanza)
    assert refused(read(stanza.toXml()), reason)


def test_two_payloads_rejected(read):
    stanza = _stanza()
    stanza.addElement((NS_JGSL, "jgsl"))["t"] = "1"
    with pytest.raises(CodecError, match="found 2"):
        decode(stanza)
    assert refused(read(stanza.toXml()), "found 2")


def test_oversize_message_not_encoded():
    big = pb.NormalUpdateReply()
    for i in range(MAX_PAYLOAD_BYTES // 20):
        big.agents.nickname.append(f"agent-number-{i:08d}")
    with pytest.raises(CodecError, match="exceeds"):
        encode(big, "x@y")


@given(t=st.integers(min_value=-5, max_value=300), payload=st.binary(max_size=200))
def test_arbitrary_payload_never_raises_anything_else(t, payload):
    """Random type ids and bytes either decode or raise CodecError."""
    stanza = _stanza(t=str(t), content=base64.b64encode(payload).decode())
    try:
        decode(stanza)
    except CodecError:
        pass
    generic_way, fast_way = both(stanza.toXml())
    assert generic_way == fast_way


@given(text=st.text(max_size=300))
def test_arbitrary_text_never_raises_anything_else(text):
    try:
        decode(_stanza(content=text))
    except CodecError:
        pass
    generic_way, fast_way = both(_stanza(content=text).toXml())
    assert generic_way == fast_way


def test_addresses_and_chat_text_are_escaped(read):
    """Resources may hold any character: what goes out as text comes back the same."""
    sender, recipient = "bob@emu.localhost/it's <me> & \"you\"", "grid1.localhost/a&b"
    envelope = read(encode(pb.Ping(csk="k"), recipient, sender))
    assert (envelope.sender, envelope.recipient) == (sender, recipient)
    chat = read(encode(Chat("1 < 2 & 'x' > \"y\""), recipient, sender))
    assert chat.message == Chat("1 < 2 & 'x' > \"y\"")


def test_a_bounce_names_the_unreachable_entity_its_condition_and_what_we_sent(read):
    """As the embedded router (and Prosody) bounce a stanza to an unconnected component."""
    from twisted.words.protocols.jabber.error import StanzaError

    sent = parse(encode(pb.NormalUpdate(sk="k", id=3), "grid1.localhost", "a@emu.localhost"))
    bounce = StanzaError("service-unavailable", type="cancel").toResponse(sent)
    envelope = read(bounce.toXml())
    assert envelope.sender == "grid1.localhost" and envelope.recipient == "a@emu.localhost"
    assert envelope.message == Bounce("service-unavailable", pb.NormalUpdate(sk="k", id=3))


def test_a_bounce_without_a_readable_original_is_still_a_bounce(read):
    envelope = read(_stanza(kind="error", content="!!").toXml())
    assert envelope.message == Bounce("undefined-condition", None)


def test_xmpp_pings_and_answers_round_trip(read):
    ping = read(encode(XmppPing("p1"), "grid1.localhost", "gateway.localhost"))
    assert ping == Envelope("gateway.localhost", "grid1.localhost", XmppPing("p1"))
    pong = read(encode(XmppPong("p1"), "gateway.localhost", "grid1.localhost"))
    assert pong == Envelope("grid1.localhost", "gateway.localhost", XmppPong("p1"))
    from twisted.words.protocols.jabber.error import StanzaError

    bounced = StanzaError("service-unavailable").toResponse(
        parse(encode(XmppPing("p2"), "grid1.localhost", "gateway.localhost")))
    assert read(bounced.toXml()).message == Bounce("service-unavailable", XmppPing("p2"))


# The same message written many ways: the fast path and the generic path must agree.

_ESCAPES = {"&": ["&amp;", "&#38;", "&#x26;"], "<": ["&lt;", "&#60;"], ">": [">", "&gt;"],
            "'": ["&apos;", "&#39;"], '"': ["&quot;", "&#34;"]}


@st.composite
def _attribute(draw, name: str, value: str) -> str:
    quote = draw(st.sampled_from(["'", '"']))
    written = "".join(
        draw(st.sampled_from(_ESCAPES[c])) if c in _ESCAPES
        else (draw(st.sampled_from([c, f"&#{ord(c)};", f"&#x{ord(c):x};"])) if c.isalnum()
              else c)
        for c in value)
    space = draw(st.sampled_from(["", " ", "\n\t"]))
    return f" {name}{space}={space}{quote}{written}{quote}"


@st.composite
def _jgsl_stanzas(draw) -> str:
    """A JGSL <message/> as another XMPP implementation might write it, or something near."""
    message = draw(st.sampled_from(samples()))
    payload = base64.b64encode(message.SerializeToString()).decode()
    payload = draw(st.sampled_from([
        payload, f"  {payload}\n", payload[:-1] + "!", "", payload + payload,
        base64.b64encode(draw(st.binary(max_size=40))).decode()]))
    cdata = draw(st.integers(0, len(payload)))
    if draw(st.booleans()) and "]]>" not in payload:
        payload = f"{payload[:cdata]}<![CDATA[{payload[cdata:]}]]>"
    t = draw(st.sampled_from([str(type_of(message)), f" {type_of(message)}", "x", "",
                              str(type_of(message)) + "0", None]))
    attributes = [
        draw(_attribute("to", draw(st.sampled_from(["grid1.localhost", "a&b@x/<r>"])))),
        draw(_attribute("from", draw(st.sampled_from(
            ["alice@emu.localhost/r", "bob@emu.localhost/it's \"me\"", ""])))),
    ]
    kind = draw(st.sampled_from([None, "normal", "chat", "error", "headline"]))
    if kind:
        attributes.append(draw(_attribute("type", kind)))
    if draw(st.booleans()):
        attributes.append(" xml:lang='en'")
    attributes = draw(st.permutations(attributes))
    own_ns = draw(st.sampled_from(["", " xmlns='jabber:component:accept'", " xmlns='urn:x'"]))
    t_attr = "" if t is None else f" t='{t}'"
    child = draw(st.sampled_from([
        f"<jgsl xmlns='{NS_JGSL}'{t_attr}>{payload}</jgsl>",
        f"<j:jgsl xmlns:j='{NS_JGSL}'{t_attr}>{payload}</j:jgsl>",
        f"<jgsl xmlns='{NS_JGSL}'{t_attr}>{payload}<x/></jgsl>",
        f"<jgsl xmlns='{NS_JGSL}'{t_attr}>{payload}</jgsl >",
        f"<jgsl xmlns='urn:other'{t_attr}>{payload}</jgsl>",
    ]))
    extra = draw(st.lists(st.sampled_from([
        "<body>hello</body>", "<x xmlns='urn:x'/>", " \n ", f"<jgsl xmlns='{NS_JGSL}' t='1'/>",
        "<error type='cancel'><service-unavailable "
        "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"]), max_size=2))
    children = draw(st.permutations([child, *extra]))
    return f"<message{own_ns}{''.join(attributes)}>{''.join(children)}</message>"


@given(xml=_jgsl_stanzas(), chunk=st.integers(1, 64))
def test_the_fast_path_reads_what_the_generic_path_reads(xml, chunk):
    """Entities, CDATA, namespaces and prefixes, attribute order and quoting, whitespace,
    extra children, bad payloads, the stream split anywhere: the same outcome both ways."""
    generic_way, fast_way = both(xml, chunk)
    assert fast_way == generic_way, xml


def test_the_fast_path_takes_what_jgsl_writes_and_leaves_the_rest():
    """JGSL's own stanzas go fast; a prefixed child, an error, a nested element do not."""
    xml = encode(pb.Ping(csk="k"), "gateway.localhost", "bob@emu.localhost")
    assert fast(xml)[1] == "fast"
    ping = base64.b64encode(pb.Ping(csk="k").SerializeToString()).decode()
    for other in (f"<message from='a@b'><j:jgsl xmlns:j='{NS_JGSL}' t='1'>{ping}</j:jgsl>"
                  "</message>",
                  f"<message from='a@b' type='error'><jgsl xmlns='{NS_JGSL}' t='1'>{ping}"
                  "</jgsl></message>",
                  f"<message from='a@b'><jgsl xmlns='{NS_JGSL}' t='1'>{ping}<b/></jgsl>"
                  "</message>"):
        assert fast(other)[1] == "generic", other
