"""``jgsl-admin shutdown``: ask a gateway or grid process to shut down gracefully.

Connects to the XMPP server's component port as an admin component (``--name``, one of the
JIDs the target lists in ``--admin`` or /JGSL/Admin) with the component secret
(``$JGSL_COMPONENT_SECRET`` or ``--secret-file``), sends one ADMIN_SHUTDOWN to each target
and disconnects.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from twisted.internet import defer, task
from twisted.internet.endpoints import clientFromString
from twisted.words.protocols.jabber import component, xmlstream

from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import encode


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jgsl-admin", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["shutdown"])
    parser.add_argument("targets", nargs="+", help="component JIDs to shut down")
    parser.add_argument("--xmpp", default="tcp:127.0.0.1:5347",
                        help="component port of the XMPP server or router")
    parser.add_argument("--name", default="admin.localhost", help="this admin component's JID")
    parser.add_argument("--secret-file", help="component secret (else $JGSL_COMPONENT_SECRET)")
    parser.add_argument("--reason", default="", help="logged by the target")
    args = parser.parse_args(argv)
    if args.secret_file:
        args.secret = Path(args.secret_file).read_text().strip()
    else:
        args.secret = os.environ.get("JGSL_COMPONENT_SECRET", "jgsl-dev-secret")
    return args


@defer.inlineCallbacks
def run(reactor, args: argparse.Namespace):
    factory = component.componentFactory(args.name, args.secret)
    factory.noisy = False
    done: defer.Deferred = defer.Deferred()

    def authenticated(xs) -> None:
        for target in args.targets:
            xs.send(encode(pb.AdminShutdown(reason=args.reason), target, args.name))
        print(f"ADMIN_SHUTDOWN sent to {', '.join(args.targets)}")
        xs.sendFooter()
        reactor.callLater(0.5, xs.transport.loseConnection)
        reactor.callLater(0.6, done.callback, None)

    def failed(reason) -> None:
        print(f"sign-in as {args.name} failed: {reason}", file=sys.stderr)
        done.callback(1)

    factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, authenticated)
    factory.addBootstrap(xmlstream.INIT_FAILED_EVENT, failed)
    endpoint = clientFromString(reactor, args.xmpp)
    yield endpoint.connect(factory)
    code = yield done
    if code:
        raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    task.react(run, [args])


if __name__ == "__main__":
    main()
