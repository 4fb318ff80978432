"""The stream reader: the stanzas and bytes it reports, the trees it still builds, and the
XML it refuses (jgsl/xmpp/stanzas.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.words.xish import domish

from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import encode
from jgsl.xmpp.stanzas import StanzaReader

HEADER = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
          b"xmlns:stream='http://etherx.jabber.org/streams' to='grid1.localhost' id='s1'>")
STANZAS = [
    encode(pb.Ping(csk="k"), "gateway.localhost", "bob@emu.localhost/r").encode(),
    b"<iq type='get' id='a>b' to='x' from='y'><ping xmlns='urn:xmpp:ping'/></iq>",
    b"<presence/>",
    b"<iq type='result' id=\"q'1\" to='x' from='y' />",
    b"<message to='a' from='b' xml:lang='en'><body>1 &lt; 2 &amp; <![CDATA[<x>]]></body>"
    b"</message >",
    b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
    b"</stream:error>",
    b"<message to='a' from='b'><x:y xmlns:x='urn:x' x:z='1'/></message>",
    b"<message to='a' from='b'></message>",
    "<message to='\u00e9l\u00e8ve@x' from='b'><body>\u2603</body></message>".encode(),
]


def read(data: bytes, chunks: list[int] | None = None, take=lambda stanza: False):
    """Feed ``data`` (split at ``chunks``); what the reader reported, in order."""
    reader = StanzaReader()
    seen: list = []
    reader.DocumentStartEvent = lambda root: seen.append(("root", root.toXml()))
    reader.ElementEvent = lambda element: seen.append(("tree", element.toXml()))
    reader.DocumentEndEvent = lambda: seen.append(("end",))

    def offered(stanza) -> bool:
        seen.append(("bytes", reader.bytes_of(stanza), stanza.contained,
                     stanza.plain is not None))
        return take(stanza)

    reader.on_stanza = offered
    at = 0
    for size in chunks or []:
        reader.parse(data[at:at + size])
        at += size
    reader.parse(data[at:])
    return seen


def domish_trees(data: bytes) -> list:
    """What Twisted's own element stream reports for the same bytes."""
    stream = domish.elementStream()
    seen: list = []
    stream.DocumentStartEvent = lambda root: seen.append(("root", root.toXml()))
    stream.ElementEvent = lambda element: seen.append(("tree", element.toXml()))
    stream.DocumentEndEvent = lambda: seen.append(("end",))
    stream.parse(data)
    return seen


DOCUMENT = HEADER + b" \n".join(STANZAS) + b"</stream:stream>"


def test_each_stanza_is_offered_with_its_exact_bytes_then_built_as_domish_would():
    seen = read(DOCUMENT)
    assert [s[1] for s in seen if s[0] == "bytes"] == STANZAS
    assert [s for s in seen if s[0] != "bytes"] == domish_trees(DOCUMENT)
    contained = [s[2] for s in seen if s[0] == "bytes"]
    assert contained == [True, True, True, True, True, False, False, True, True]
    plain = [s[3] for s in seen if s[0] == "bytes"]
    assert plain == [True] + [False] * 8


def test_a_taken_stanza_is_not_built():
    seen = read(DOCUMENT, take=lambda stanza: stanza.plain is not None)
    trees = [s for s in seen if s[0] == "tree"]
    assert len(trees) == len(STANZAS) - 1
    assert all("jgsl" not in tree[1] for tree in trees)


@given(st.lists(st.integers(1, 40), max_size=60))
def test_the_stream_split_anywhere_reads_the_same(chunks):
    assert read(DOCUMENT, chunks) == read(DOCUMENT)


@pytest.mark.parametrize("bad", [
    b"<!DOCTYPE x [<!ENTITY a 'b'>]><stream xmlns='jabber:component:accept'>",
    HEADER + b"<message><!-- hidden --></message>",
    HEADER + b"<?pi data?>",
    HEADER + b"<message><a></b></message>",
    HEADER + b"<message to='x' to='y'/>",
    HEADER + b"<message>&undefined;</message>",
    HEADER + b"<p:message/>",
    HEADER + b"<message/></stream:stream><message/>",
])
def test_what_xmpp_forbids_or_is_not_xml_closes_the_stream(bad):
    with pytest.raises(domish.ParserError):
        read(bad)


def test_a_stanza_over_the_size_limit_is_refused_even_split():
    big = HEADER + b"<message><body>" + b"x" * StanzaReader.max_stanza_bytes
    with pytest.raises(domish.ParserError, match="larger than"):
        read(big, [1000] * (len(big) // 1000))


def test_whitespace_and_stanzas_between_do_not_count_towards_the_limit():
    small = b"<message to='a' from='b'><body>" + b"y" * 1000 + b"</body></message>  "
    data = HEADER + small * (2 * StanzaReader.max_stanza_bytes // len(small))
    seen = read(data, [4096] * (len(data) // 4096))
    assert sum(1 for s in seen if s[0] == "tree") == len(data) // len(small)


def test_too_many_elements_in_one_stanza_are_refused():
    data = HEADER + b"<message>" + b"<a/>" * (StanzaReader.max_elements + 1) + b"</message>"
    with pytest.raises(domish.ParserError, match="elements"):
        read(data)


def test_a_failing_handler_drops_that_stanza_only(logged):
    def take(stanza):
        if stanza.plain is not None:
            raise RuntimeError("boom")
        return False

    seen = read(DOCUMENT, take=take)
    assert sum(1 for s in seen if s[0] == "tree") == len(STANZAS) - 1
    assert "a stanza handler failed" in logged.text()
