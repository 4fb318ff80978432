"""Read stanza bytes the two ways a component can: the generic tree and the fast path."""

from __future__ import annotations

from twisted.words.xish import domish

from jgsl.wire.codec import CodecError, decode, decode_plain, parse
from jgsl.xmpp.stanzas import StanzaReader

HEADER = (b"<stream:stream xmlns='jabber:component:accept' "
          b"xmlns:stream='http://etherx.jabber.org/streams'>")


def outcome(read) -> object:
    """What decoding gave: the envelope, or ("CodecError", its text)."""
    try:
        return read()
    except CodecError as e:
        return ("CodecError", str(e))


def generic(xml: bytes | str) -> object:
    """The generic way: a domish tree, then L{decode}."""
    return outcome(lambda: decode(parse(xml)))


def fast(xml: bytes | str, chunk: int | None = None) -> tuple[object, str]:
    """A component's way: the L{StanzaReader} takes a plain JGSL stanza (decoded from its
    summary) and builds a tree only for anything else. The outcome, and which way."""
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    results: list[tuple[object, str]] = []
    reader = StanzaReader()
    reader.DocumentStartEvent = lambda root: None
    reader.DocumentEndEvent = lambda: None

    def take(stanza) -> bool:
        if stanza.plain is None:
            return False
        results.append((outcome(lambda: decode_plain(stanza.plain)), "fast"))
        return True

    reader.on_stanza = take
    reader.ElementEvent = lambda element: results.append(
        (outcome(lambda: decode(element)), "generic"))
    reader.parse(HEADER)
    data = xml
    step = chunk or len(data) or 1
    for i in range(0, len(data), step):
        reader.parse(data[i:i + step])
    if len(results) != 1:
        raise AssertionError(f"expected one stanza, read {len(results)}")
    return results[0]


def both(xml: bytes | str, chunk: int | None = None) -> tuple[object, object]:
    """The generic outcome and the fast path's, for comparing; ("ParserError",) for bytes
    that are not XML (which close the stream either way)."""
    try:
        generic_way = generic(xml)
    except domish.ParserError:
        generic_way = ("ParserError",)
    try:
        fast_way = fast(xml, chunk)[0]
    except domish.ParserError:
        fast_way = ("ParserError",)
    return generic_way, fast_way
