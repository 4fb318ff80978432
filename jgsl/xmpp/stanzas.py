"""An XMPP stream reader that builds no tree for the stanzas JGSL sends most.

Twisted's stream parser (domish) turns every stanza into a tree of Elements, each child
pointing at its parent (a reference cycle for the cyclic GC), and the router serializes
that tree again to forward it. Parsing and serializing cost the router about three
quarters of its time and a grid process more than decoding its messages (issue 21).

L{StanzaReader} runs expat, the parser the stream already uses, with handlers that only
note what a consumer needs of each top-level stanza: its name and attributes, where its
bytes start and end in the stream, whether it is self-contained (uses no namespace prefix
declared outside it), and for a plain JGSL message the ``t`` attribute and text of its one
``<jgsl/>`` child. A consumer (``on_stanza``) takes the stanza on that summary (the router
forwards its bytes; a component decodes its payload) or declines it, and only then is a
domish tree built, from the stanza's own bytes, and dispatched the usual way. The stream
header, stream errors, pings, the handshake and anything unusual take that generic way.

The reader also refuses what XMPP forbids (RFC 6120 §11.1: no DTD, comments or processing
instructions) and stanzas over L{StanzaReader.max_stanza_bytes}; a refusal is a
C{ParserError}, which closes the offending stream only.
"""

from __future__ import annotations

import pyexpat
from collections.abc import Callable
from xml.sax.saxutils import quoteattr

from twisted.words.protocols.jabber import xmlstream
from twisted.words.xish import domish

from jgsl.core.safetext import Logger
from jgsl.wire.codec import NS_JGSL, PlainJgsl

log = Logger(namespace="jgsl.stanzas")

#: The expanded name of JGSL's payload element as expat reports it.
_JGSL = f"{NS_JGSL} jgsl"


class Stanza:
    """One top-level stanza as the reader saw it (see the module docstring).

    ``start`` and ``end`` are offsets in the stream: L{StanzaReader.bytes_of} gives its
    bytes, valid while ``on_stanza`` runs. ``plain`` is the L{PlainJgsl} view when the
    stanza is a plain JGSL message, else None.
    """

    __slots__ = ("uri", "name", "attributes", "start", "end", "contained", "plain")

    def __init__(self, uri: str, name: str, attributes: dict[str, str], start: int,
                 contained: bool) -> None:
        self.uri, self.name, self.attributes = uri, name, attributes
        self.start, self.end, self.contained = start, start, contained
        self.plain: PlainJgsl | None = None


class _Open:
    """What the reader tracks while a top-level stanza is open."""

    __slots__ = ("stanza", "content", "children", "elements", "jgsl", "in_jgsl", "deep",
                 "text", "jgsl_type")

    def __init__(self, stanza: Stanza) -> None:
        self.stanza = stanza
        self.content = False  # anything at all between its start and end tags
        self.children = 0  # child elements
        self.elements = 0  # elements inside it, at any depth
        self.jgsl = False  # a child is <jgsl/> in our namespace, unprefixed
        self.in_jgsl = False  # inside that child now
        self.deep = False  # an element below a child: not a plain JGSL message
        self.text: list[str] = []
        self.jgsl_type: str | None = None


def _prefixed(name: str) -> bool:
    """Does an expanded name carry a prefix (other than ``xml``, which is always bound)?"""
    return name.count(" ") == 2 and not name.endswith(" xml")


def _split(name: str) -> tuple[str, str, str | None]:
    """expat's ``uri local [prefix]`` (namespace_prefixes on) as (uri, local, prefix)."""
    parts = name.split(" ")
    if len(parts) == 1:
        return "", name, None
    if len(parts) == 2:
        return parts[0], parts[1], None
    return parts[0], parts[1], parts[2]


class StanzaReader:
    """The element stream of a L{StanzaStream}: domish's interface, fewer trees.

    Like C{domish.ExpatElementStream} it calls ``DocumentStartEvent(root)``,
    ``ElementEvent(element)`` and ``DocumentEndEvent()``; before building an element for a
    stanza it offers the stanza to ``on_stanza``, which returns True if it took it.
    """

    #: Largest stanza accepted, in bytes (Prosody's default for client streams, 256 KiB;
    #: a JGSL payload is at most 48 KiB, 64 KiB in base64).
    max_stanza_bytes = 256 * 1024
    #: Most elements in one stanza.
    max_elements = 1000

    def __init__(self) -> None:
        self.DocumentStartEvent: Callable[[domish.Element], None] | None = None
        self.ElementEvent: Callable[[domish.Element], None] | None = None
        self.DocumentEndEvent: Callable[[], None] | None = None
        self.on_stanza: Callable[[Stanza], bool] | None = None
        parser = pyexpat.ParserCreate("UTF-8", " ")
        parser.namespace_prefixes = True
        parser.buffer_text = True
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        parser.StartNamespaceDeclHandler = self._namespace
        parser.StartDoctypeDeclHandler = self._restricted
        parser.CommentHandler = self._restricted
        parser.ProcessingInstructionHandler = self._restricted
        self._parser = parser
        self._depth = 0
        self._buffer = bytearray()  # the stream's bytes from offset _base on
        self._base = 0
        self._open: _Open | None = None
        self._root_namespaces: dict[str | None, str] = {}
        self._stream_uri = ""
        self._trees: domish.ExpatElementStream | None = None
        self._built: list[domish.Element] = []

    def parse(self, data: bytes) -> None:
        """Feed bytes from the wire; raises C{domish.ParserError} if the stream is bad."""
        buffer = self._buffer
        buffer += data
        try:
            self._parser.Parse(data)
        except pyexpat.error as e:
            raise domish.ParserError(str(e)) from None
        # keep the bytes of the open stanza, or of the token expat has not finished
        keep_from = self._open.stanza.start if self._open is not None \
            else self._parser.CurrentByteIndex
        cut = keep_from - self._base
        if cut > 0:
            del buffer[:cut]
            self._base = keep_from
        if len(buffer) > self.max_stanza_bytes:
            raise domish.ParserError(
                f"stanza larger than {self.max_stanza_bytes} bytes")

    def bytes_of(self, stanza: Stanza) -> bytes:
        """The stanza's bytes as they arrived (while ``on_stanza`` runs)."""
        return bytes(self._buffer[stanza.start - self._base:stanza.end - self._base])

    def _restricted(self, *args) -> None:
        raise domish.ParserError("restricted XML (a DTD, comment or processing instruction)")

    def _namespace(self, prefix: str | None, uri: str) -> None:
        if self._depth == 0:  # declared on the stream header: in scope for every stanza
            self._root_namespaces[prefix] = uri

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        depth = self._depth
        self._depth = depth + 1
        if depth >= 2:  # inside a stanza
            self._child(depth, name, attributes)
            return
        uri, local, prefix = _split(name)
        contained = (prefix is None or prefix == "xml") and not (
            " " in "".join(attributes) and any(_prefixed(key) for key in attributes))
        if depth == 0:
            self._stream_start(uri, local, attributes)
            return
        self._open = _Open(Stanza(uri, local, attributes, self._parser.CurrentByteIndex,
                                  contained))

    def _child(self, depth: int, name: str, attributes: dict[str, str]) -> None:
        state = self._open
        state.content = True
        state.elements += 1
        if state.elements > self.max_elements:
            raise domish.ParserError(f"more than {self.max_elements} elements in a stanza")
        # A prefix may be bound outside the stanza, and would not travel with its bytes:
        # any prefixed name (JGSL writes none) makes the stanza go the generic way.
        if name.count(" ") == 2 and _prefixed(name) \
                or " " in "".join(attributes) and any(_prefixed(key) for key in attributes):
            state.stanza.contained = False
        if depth == 2:
            state.children += 1
            if name == _JGSL:
                state.jgsl = state.in_jgsl = True
                state.jgsl_type = attributes.get("t")
        else:
            state.deep = True

    def _text(self, data: str) -> None:
        state = self._open
        if state is None:
            return  # whitespace between stanzas
        state.content = True
        if state.in_jgsl and self._depth == 3:
            state.text.append(data)

    def _end(self, name: str) -> None:
        depth = self._depth - 1
        self._depth = depth
        if depth == 0:
            if self.DocumentEndEvent is not None:
                self.DocumentEndEvent()
            return
        if depth == 2:
            self._open.in_jgsl = False
            return
        if depth > 2:
            return
        state, self._open = self._open, None
        stanza = state.stanza
        index = self._parser.CurrentByteIndex
        at = index - self._base
        if not state.content and self._buffer[at - 2:at] == b"/>":
            stanza.end = index  # an empty element: expat reports its end after "/>"
        else:  # at "</name", which holds no '>' before its own
            stanza.end = self._buffer.index(b">", at) + 1 + self._base
        if state.jgsl and state.children == 1 and not state.deep \
                and stanza.name == "message" and stanza.uri == self._stream_uri \
                and stanza.attributes.get("type") != "error":
            stanza.plain = PlainJgsl(stanza.attributes, state.jgsl_type, "".join(state.text))
        take = self.on_stanza
        if take is not None:
            try:
                if take(stanza):
                    return
            except Exception:
                log.failure("a stanza handler failed; the stanza was dropped")
                return
        self._generic(stanza)

    def _generic(self, stanza: Stanza) -> None:
        """Build the stanza's tree from its bytes and hand it on, as domish would."""
        if self._trees is None:
            self._trees = domish.ExpatElementStream()
            self._trees.DocumentStartEvent = lambda root: None
            self._trees.ElementEvent = self._built.append
            self._trees.DocumentEndEvent = lambda: None
            declarations = "".join(
                f" xmlns={quoteattr(uri)}" if prefix is None
                else f" xmlns:{prefix}={quoteattr(uri)}"
                for prefix, uri in self._root_namespaces.items())
            self._trees.parse(f"<stream{declarations}>".encode())
        self._trees.parse(self.bytes_of(stanza))
        if self._built:
            element = self._built.pop()
            self._built.clear()
            if self.ElementEvent is not None:
                self.ElementEvent(element)

    def _stream_start(self, uri: str, local: str, attributes: dict[str, str]) -> None:
        self._stream_uri = self._root_namespaces.get(None, "")
        attrs: dict = {}
        for key, value in attributes.items():
            if " " in key:
                key_uri, key_local, _ = _split(key)
                attrs[(key_uri, key_local)] = value
            else:
                attrs[key] = value
        prefixes = {p: u for p, u in self._root_namespaces.items() if p is not None}
        root = domish.Element((uri, local), self._stream_uri, attrs, prefixes)
        if self.DocumentStartEvent is not None:
            self.DocumentStartEvent(root)


class StanzaStream(xmlstream.XmlStream):
    """Twisted's XMPP stream with a L{StanzaReader}: what ``take_stanzas`` takes is never
    built into a tree; everything else is dispatched to observers as before."""

    _on_stanza: Callable[[Stanza], bool] | None = None

    def _initializeStream(self) -> None:
        reader = StanzaReader()
        reader.DocumentStartEvent = self.onDocumentStart
        reader.ElementEvent = self.onElement
        reader.DocumentEndEvent = self.onDocumentEnd
        reader.on_stanza = self._on_stanza
        self.stream = reader

    def take_stanzas(self, on_stanza: Callable[[Stanza], bool] | None) -> None:
        """Offer every stanza to ``on_stanza`` first (None: stop offering)."""
        self._on_stanza = on_stanza
        if isinstance(self.stream, StanzaReader):
            self.stream.on_stanza = on_stanza

    def bytes_of(self, stanza: Stanza) -> bytes:
        return self.stream.bytes_of(stanza)
