"""Null-echo run: N senders bouncing stanzas of a given size off an echo component.

    python bench/echo.py --xmpp tcp:127.0.0.1:5347 --senders 100 --size 120 --duration 10
                         [--paced] [--shape chat|jgsl] [--answers FILE]
                         [--part both|echo|driver] [--label L]

Each sender sends its next stanza as soon as the last came back (the router's own limit),
or with --paced at most one per 0.1 s tick. --shape jgsl sends JGSL-shaped stanzas (a
namespaced <jgsl/> child holding a base64 protobuf, jgsl.core.echo), chat (the default)
a chat body.

Prints one JSON line: round trips per second and RTT percentiles; --answers also writes
every round trip's (time, RTT) as jgsl-load does (jgsl.load.write_answers). Used by
bench/e2e.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from twisted.internet import defer, task
from twisted.internet.endpoints import clientFromString

from jgsl.core.echo import SHAPES, DriverCore, EchoCore
from jgsl.core.flood import FloodGate
from jgsl.load import percentile, write_answers
from jgsl.tap import DEV_SECRET, SECRET_ENV
from jgsl.xmpp.link import ComponentService


@defer.inlineCallbacks
def run(reactor, args):
    secret = os.environ.get(SECRET_ENV, DEV_SECRET)

    def endpoint():
        return clientFromString(reactor, args.xmpp)

    def flood() -> FloodGate:
        # Unpaced senders go faster than a JGSL link's 20 a second per pair: the router's
        # limit is measured, not the flood gate's.
        return FloodGate() if args.paced else FloodGate(rate=1e9, burst=1e9)

    echo_jid, driver_jid = f"echo{args.label}.{args.domain}", f"drive{args.label}.{args.domain}"
    services = []
    if args.part in ("both", "echo"):
        echo = ComponentService(reactor, echo_jid, secret, endpoint, EchoCore(echo_jid),
                                flood=flood())
        echo.startService()
        services.append(echo)
        yield task.deferLater(reactor, 0.5, lambda: None)  # the echo is up before the driver
    if args.part == "echo":  # outlive the driver (started after this, as long)
        yield task.deferLater(reactor, args.warmup + args.duration + 3.0, lambda: None)
        yield defer.maybeDeferred(echo.stopService)
        print(json.dumps({"part": "echo"}))
        return
    driver_core = DriverCore(driver_jid, echo_jid, args.senders, args.size, paced=args.paced,
                             shape=args.shape)
    driver = ComponentService(reactor, driver_jid, secret, endpoint, driver_core,
                              flood=flood())
    driver.startService()
    services.append(driver)
    yield task.deferLater(reactor, args.warmup, lambda: None)
    start, before = reactor.seconds(), len(driver_core.rtts)
    yield task.deferLater(reactor, args.duration, lambda: None)
    window = reactor.seconds() - start
    rtts = [r for _, r in driver_core.rtts[before:]]
    for service in reversed(services):
        yield defer.maybeDeferred(service.stopService)
    if args.answers:
        write_answers(args.answers, driver_core.rtts)
    print(json.dumps({
        "senders": args.senders, "size": args.size, "paced": args.paced, "shape": args.shape,
        "round_trips": len(rtts),
        "round_trips_per_s": round(len(rtts) / window, 1),
        "rtt_ms": {"p50": _ms(percentile(rtts, 50)), "p99": _ms(percentile(rtts, 99))},
    }))


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xmpp", required=True)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--part", choices=("both", "echo", "driver"), default="both",
                   help="run the echo component, the driver, or both (in one process); "
                        "apart, each one's CPU can be told from the other's")
    p.add_argument("--label", default="",
                   help="components echo<label>.<domain> and drive<label>.<domain>, so that "
                        "two echo runs can share a server")
    p.add_argument("--senders", type=int, default=100)
    p.add_argument("--size", type=int, default=120,
                   help="characters of the chat body or of the base64 payload")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--paced", action="store_true",
                   help="at most one stanza per sender per 0.1 s tick")
    p.add_argument("--shape", choices=SHAPES, default="chat",
                   help="chat bodies, or JGSL messages (a <jgsl/> child, base64 protobuf)")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--answers", type=Path, default=None,
                   help="write every round trip's (time, RTT) here (jgsl.load.read_answers)")
    task.react(run, [p.parse_args(argv)])


if __name__ == "__main__":
    main(sys.argv[1:])
