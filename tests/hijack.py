"""A player's account that pretends to be a grid process, as found in the wild.

``python tests/hijack.py C2S_PORT CA_PEM``: signs in as mallory@localhost over c2s (SASL
after STARTTLS) and sends the gateway GRID_HELLO three ways (unsealed; sealed with a
guessed secret; and a GRID_NODE_READY), then prints "hijack sent" and leaves. Its own
process: the test runner never touches the global reactor.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twisted.internet import defer, task  # noqa: E402
from twisted.internet.endpoints import clientFromString  # noqa: E402
from twisted.words.protocols.jabber import xmlstream  # noqa: E402

from jgsl.core.seal import Sealer, SealKeys  # noqa: E402
from jgsl.wire import jgsl_pb2 as pb  # noqa: E402
from jgsl.wire.codec import Envelope, encode, presence  # noqa: E402
from jgsl.xmpp.player import player_factory  # noqa: E402

ME, GATEWAY = "mallory@localhost/x", "gateway.localhost"


def hellos(now: float) -> list[str]:
    forged = Envelope(ME, GATEWAY, pb.GridHello(capacity=1000))
    Sealer(SealKeys.from_secrets(b"a guessed secret")).seal(forged, now)
    return [encode(pb.GridHello(capacity=1000), GATEWAY),  # the server stamps `from`
            encode(forged.message, GATEWAY),
            encode(pb.NodeReady(request=1, id=1, key="mallory"), GATEWAY)]


@defer.inlineCallbacks
def main(reactor, port: str, ca: str):
    factory = player_factory(ME, "mallory-pw", Path(ca).read_bytes())
    done: defer.Deferred = defer.Deferred()

    def signed_in(xs) -> None:
        xs.send(presence())
        for _ in range(3):  # as a heartbeat would
            for stanza in hellos(reactor.seconds()):
                xs.send(stanza)
        reactor.callLater(1.0, done.callback, xs)

    factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, signed_in)
    factory.addBootstrap(xmlstream.INIT_FAILED_EVENT,
                         lambda failure: done.called or done.errback(failure))
    yield clientFromString(reactor, f"tcp:127.0.0.1:{port}").connect(factory)
    xs = yield done
    print("hijack sent", flush=True)
    xs.sendFooter()
    xs.transport.loseConnection()


if __name__ == "__main__":
    task.react(main, sys.argv[1:3])
