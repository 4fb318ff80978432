"""XML stream work per stanza, in one process: the generic way against the fast path.

What a component and the router spend on XML, without sockets or game logic, so that the
two ways compare in one run on this noisy machine:

- **component**: N update stanzas (bytes, as a grid receives them, several per read) go
  into a component's stream; the link (jgsl.xmpp.link.CoreHandler) decodes each and hands
  it to a core that answers with a reply of JGSL's measured size, which the link encodes
  and writes. Generic: Twisted's XmlStream (a domish tree per stanza, observers, decode);
  fast: jgsl.xmpp.stanzas.StanzaStream (no tree for a plain JGSL message).
- **router**: the embedded router (jgsl.xmpp.router.QuietRouter) routing the same
  stanzas from one component stream to another. Generic: every stanza parsed into a tree
  and serialized again; fast: the bytes forwarded.

For each: CPU µs per stanza and the cyclic garbage collector's collections per 10,000
stanzas (a domish tree is a reference cycle: each child points at its parent).

    python bench/stream.py [--stanzas 20000] [--repeat 3] [--smoke]

Writes bench/results/stream.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.words.protocols.jabber import xmlstream
from twisted.words.protocols.jabber.jid import JID

from jgsl.core.component import Quiet
from jgsl.core.flood import FloodGate
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import Envelope, encode_bytes
from jgsl.xmpp.link import CoreHandler
from jgsl.xmpp.router import QuietRouter
from jgsl.xmpp.stanzas import StanzaStream

RESULTS = Path(__file__).parent / "results"
HEADER = (b"<stream:stream xmlns='jabber:component:accept' "
          b"xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='{host}'>")
#: Payload bytes of JGSL's update request and reply as measured on the wire (issue 21).
REQUEST_PAYLOAD, REPLY_PAYLOAD = 45, 215


class Answering(Quiet):
    """A core that answers every update with a reply of JGSL's measured size."""

    def __init__(self) -> None:
        self.reply = pb.NormalUpdateReply(st=7, agents=pb.AgentTable(
            slots=list(range(40)), nickname=["x" * 10] * 12))
        while self.reply.ByteSize() < REPLY_PAYLOAD:
            self.reply.agents.slots.append(1)
        self.count = 0

    def connected(self, now):
        return []

    def tick(self, now):
        return []

    def receive(self, now, envelope):
        self.count += 1
        return [Envelope(envelope.recipient, envelope.sender, self.reply)]


def updates(count: int, users: int) -> list[bytes]:
    """``count`` update stanzas from ``users`` users to grid1, as bytes."""
    update = pb.NormalUpdate(sk="k" * 16, id=1, st=5, ct=6, agent=pb.AgentData(
        data=pb.AgentState(rx=1000, rz=2000, facing=3)))
    update.agent.data.asset_file = "a" * max(0, REQUEST_PAYLOAD - update.ByteSize() - 2)
    return [encode_bytes(update, "grid1.localhost", f"user{i % users:04d}@load.localhost/r")
            for i in range(count)]


def _stream(cls, host: str):
    xs = cls(xmlstream.Authenticator())
    xs.thisEntity = JID(host)
    xs.makeConnection(StringTransport())
    xs.dataReceived(HEADER.replace(b"{host}", host.encode()))
    return xs


def component(fast: bool, stanzas: list[bytes], per_read: int, metrics: bool = False) -> dict:
    """A grid's link: read the stanzas, answer each; CPU µs and GC collections. With
    ``metrics``, the handling time of each goes into /metrics' histogram, as when the
    process serves --web."""
    xs = _stream(StanzaStream if fast else xmlstream.XmlStream, "grid1.localhost")
    core = Answering()
    handler = CoreHandler(core, Clock(), flood=FloodGate(rate=1e9, burst=1e9))
    handler.parent = type("P", (), {"send": lambda self, obj: xs.send(obj)})()
    handler.makeConnection(xs)
    handler.connectionInitialized()
    if metrics:
        from jgsl.web.metrics import Metrics

        handler.timing = Metrics(list, list, float).timing_for("grid1.localhost")
    reads = [b"".join(stanzas[i:i + per_read]) for i in range(0, len(stanzas), per_read)]
    result = _measure(lambda: [xs.dataReceived(data) for data in reads], len(stanzas))
    assert core.count == len(stanzas), core.count
    assert xs.transport.value().count(b"</message>") == len(stanzas)
    return result


def router(fast: bool, stanzas: list[bytes], per_read: int) -> dict:
    """The router between the load runner's component and grid1's: read and route each."""
    cls = StanzaStream if fast else xmlstream.XmlStream
    source, target = _stream(cls, "load.localhost"), _stream(cls, "grid1.localhost")
    route = QuietRouter(Clock())
    route.addRoute("load.localhost", source)
    route.addRoute("grid1.localhost", target)
    sent = [s.replace(b"from='user", b"from='load.localhost/user") for s in stanzas]
    reads = [b"".join(sent[i:i + per_read]) for i in range(0, len(sent), per_read)]
    result = _measure(lambda: [source.dataReceived(data) for data in reads], len(stanzas))
    assert target.transport.value().count(b"</message>") == len(stanzas)
    return result


def _measure(work, count: int) -> dict:
    gc.collect()
    before = sum(s["collections"] for s in gc.get_stats())
    cpu = time.process_time()
    work()
    cpu = time.process_time() - cpu
    collections = sum(s["collections"] for s in gc.get_stats()) - before
    return {"cpu_us_per_stanza": round(cpu / count * 1e6, 2),
            "gc_collections_per_10k": round(collections / count * 10_000, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stanzas", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-read", type=int, default=8, help="stanzas per TCP read")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--out", type=Path, default=RESULTS / "stream.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.stanzas, args.repeat = 200, 1
    stanzas = updates(args.stanzas, 1000)
    results: dict = {"stanzas": args.stanzas, "per_read": args.per_read}
    for name, measure in (("component", component), ("router", router)):
        for way, fast in (("generic", False), ("fast", True)):
            runs = [measure(fast, stanzas, args.per_read) for _ in range(args.repeat)]
            results[f"{name}_{way}"] = min(runs, key=lambda r: r["cpu_us_per_stanza"])
        results[f"{name}_ratio"] = round(results[f"{name}_generic"]["cpu_us_per_stanza"]
                                         / results[f"{name}_fast"]["cpu_us_per_stanza"], 2)
    # what serving /metrics adds to the link's work per update (the handling-time histogram)
    runs = [component(True, stanzas, args.per_read, metrics=True) for _ in range(args.repeat)]
    results["component_fast_with_metrics"] = min(runs, key=lambda r: r["cpu_us_per_stanza"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
