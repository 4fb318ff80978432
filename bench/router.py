"""The router's raw capacity: what JGSL is measured against.

Two raw XEP-0114 components (src, dst) in this process pipeline pre-built JGSL-shaped
``<message/>`` stanzas through the embedded router and through Prosody, each in a process
of its own. The components do no XML work beyond the handshake: they write ready bytes and
count ``</message>`` in what arrives, so the server is the bottleneck, as it should be.

- one way: src sends stanzas of each ``--sizes`` to dst, at most ``--window`` in flight;
- round trips: src sends requests of ``--request`` bytes, dst answers each with ``--reply``
  bytes (JGSL's update sizes on the wire), at most ``--window`` in flight.

For each: stanzas (or round trips) per second, the server's CPU µs per stanza (from /proc),
and this driver's. ``python bench/router.py [--server embedded,prosody] [--stanzas 100000]
[--smoke]``; writes bench/results/router.json.

``--drive ENDPOINT --seconds S --answers FILE`` instead runs the round trips against a
server someone else started (components src and dst, secret from $JGSL_COMPONENT_SECRET)
for S seconds and writes each round trip's (time, RTT) as jgsl-load does: bench/e2e.py
runs it as one side of its interleaved windows, so JGSL is measured against the router's
raw capacity under the same phases of this machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import TCP4ClientEndpoint

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SRC, DST = "src.localhost", "dst.localhost"
#: JGSL's update request and reply as measured on the wire (issue 21; docs/performance.md).
REQUEST, REPLY = 183, 417
_END = b"</message>"


def stanza(to: str, sender: str, size: int) -> bytes:
    """A JGSL-shaped message of exactly ``size`` bytes (a <jgsl/> child of base64 text)."""
    head = (f"<message to='{to}' from='{sender}' type='normal'>"
            f"<jgsl xmlns='urn:xmpp:jgsl:0' t='7'>").encode()
    tail = b"</jgsl></message>"
    return head + b"A" * max(0, size - len(head) - len(tail)) + tail


class RawComponent(protocol.Protocol):
    """Signs in with the component handshake, then only writes bytes and counts stanzas."""

    def __init__(self, jid: str, secret: str) -> None:
        self.jid, self.secret = jid, secret
        self.ready: defer.Deferred = defer.Deferred()
        self.received = 0
        self.on_stanzas = lambda count: None
        self._buffer = b""
        self._signed_in = False

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)
        self.transport.write(
            f"<stream:stream xmlns='jabber:component:accept' "
            f"xmlns:stream='http://etherx.jabber.org/streams' to='{self.jid}'>".encode())

    def dataReceived(self, data: bytes) -> None:
        if not self._signed_in:
            self._buffer += data
            found = re.search(rb"id=['\"]([^'\"]+)['\"]", self._buffer)
            if found and b"<handshake" not in self._buffer:
                digest = hashlib.sha1(found.group(1) + self.secret.encode()).hexdigest()
                self.transport.write(f"<handshake>{digest}</handshake>".encode())
                self._buffer = self._buffer[found.end():]
            elif b"<handshake" in self._buffer:
                self._signed_in, self._buffer = True, b""
                self.ready.callback(self)
            return
        data = self._buffer + data
        count = data.count(_END)
        # keep what could be the start of a split end tag
        self._buffer = data[-(len(_END) - 1):] if not data.endswith(_END) else b""
        if count:
            self.received += count
            self.on_stanzas(count)


class Factory(protocol.Factory):
    def __init__(self, component: RawComponent) -> None:
        self.component = component

    def buildProtocol(self, addr):
        return self.component


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@defer.inlineCallbacks
def measure(reactor, port: int, secret: str, server_pid: int, count: int, window: int,
            request: int, reply: int | None):
    """Pipeline ``count`` stanzas src -> dst (and, with ``reply``, dst -> src answers)."""
    src, dst = RawComponent(SRC, secret), RawComponent(DST, secret)
    for component in (src, dst):
        yield TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(Factory(component))
    yield defer.gatherResults([src.ready, dst.ready])
    out, back = stanza(DST, SRC, request), stanza(SRC, DST, reply) if reply else b""
    done: defer.Deferred = defer.Deferred()
    sent = [0]
    counter = src if reply else dst  # whose arrivals free room in the window

    def pump(_count: int = 0) -> None:
        room = min(window - (sent[0] - counter.received), count - sent[0])
        if room > 0:
            src.transport.write(out * room)
            sent[0] += room
        if counter.received >= count and not done.called:
            done.callback(None)

    if reply:
        dst.on_stanzas = lambda n: dst.transport.write(back * n)
    counter.on_stanzas = pump
    started, server_cpu, driver_cpu = time.perf_counter(), cpu_seconds(server_pid), own_cpu()
    pump()
    yield done
    elapsed = time.perf_counter() - started
    server_cpu, driver_cpu = cpu_seconds(server_pid) - server_cpu, own_cpu() - driver_cpu
    for component in (src, dst):
        component.transport.loseConnection()
    stanzas = count * (2 if reply else 1)
    return {"stanzas": stanzas, "seconds": round(elapsed, 3),
            ("round_trips_per_s" if reply else "stanzas_per_s"): round(count / elapsed, 1),
            "server_cpu_us_per_stanza": round(server_cpu / stanzas * 1e6, 2),
            "server_cores": round(server_cpu / elapsed, 2),
            "driver_cpu_us_per_stanza": round(driver_cpu / stanzas * 1e6, 2)}


@defer.inlineCallbacks
def drive(reactor, port: int, secret: str, seconds: float, window: int, request: int,
          reply: int, answers: Path):
    """Round trips flat out for ``seconds``; every one's (wall time, RTT) to ``answers``."""
    from collections import deque

    from jgsl.load import write_answers

    src, dst = RawComponent(SRC, secret), RawComponent(DST, secret)
    for component in (src, dst):
        yield TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(Factory(component))
    yield defer.gatherResults([src.ready, dst.ready])
    out, back = stanza(DST, SRC, request), stanza(SRC, DST, reply)
    sent: deque[float] = deque()
    rtts: list[tuple[float, float]] = []
    deadline = time.time() + seconds

    def pump(count: int = 0) -> None:
        now = time.time()
        for _ in range(count):
            rtts.append((now, now - sent.popleft()))
        room = window - len(sent) if now < deadline else 0
        if room > 0:
            src.transport.write(out * room)
            sent.extend([now] * room)

    dst.on_stanzas = lambda n: dst.transport.write(back * n)
    src.on_stanzas = pump
    pump()
    while time.time() < deadline or sent and time.time() < deadline + 10:
        yield task.deferLater(reactor, 0.1, lambda: None)
    write_answers(answers, rtts)
    for component in (src, dst):
        component.transport.loseConnection()


class Server:
    """The embedded router or a development Prosody, with src and dst as components."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind, self.workdir = kind, workdir
        self.secret = secrets.token_hex(8)
        self.proc = None
        self.prosody = None

    def start(self) -> tuple[int, int]:
        if self.kind == "prosody":
            from jgsl.prosody import DevProsody

            # (a directory of its own, which the prosody user can reach; removed at stop)
            self.prosody = DevProsody({SRC: self.secret, DST: self.secret}).start()
            return self.prosody.component_port, self.prosody.proc.pid
        port_file = self.workdir / "router.port"
        twistd = str(Path(sys.executable).with_name("twistd"))
        self.proc = subprocess.Popen(
            [twistd, "-n", "--pidfile=", "jgsl", "--role", "router",
             "--listen", "tcp:0:interface=127.0.0.1", "--port-file", str(port_file)],
            cwd=self.workdir, env={**os.environ, "JGSL_COMPONENT_SECRET": self.secret},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the embedded router did not start")
            time.sleep(0.05)
        return int(port_file.read_text()), self.proc.pid

    def stop(self) -> None:
        if self.prosody is not None:
            self.prosody.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@defer.inlineCallbacks
def run(reactor, args, results: dict):
    for kind in args.server:
        with tempfile.TemporaryDirectory(prefix=f"jgsl-router-{kind}-") as tmp:
            server = Server(kind, Path(tmp))
            port, pid = server.start()
            try:
                yield measure(reactor, port, server.secret, pid, min(200, args.stanzas),
                              args.window, REQUEST, None)  # warm-up
                rows = {}
                for size in args.sizes:
                    rows[f"one_way_{size}B"] = yield measure(
                        reactor, port, server.secret, pid, args.stanzas, args.window, size, None)
                rows[f"round_trip_{args.request}B_{args.reply}B"] = yield measure(
                    reactor, port, server.secret, pid, args.stanzas // 2, args.window,
                    args.request, args.reply)
                results[kind] = rows
            finally:
                server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="embedded,prosody",
                        help="comma-separated: embedded, prosody")
    parser.add_argument("--sizes", default="294,494", help="one-way stanza sizes in bytes")
    parser.add_argument("--request", type=int, default=REQUEST)
    parser.add_argument("--reply", type=int, default=REPLY)
    parser.add_argument("--stanzas", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=200, help="stanzas in flight at most")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--out", type=Path, default=RESULTS / "router.json")
    parser.add_argument("--drive", metavar="ENDPOINT",
                        help="only drive round trips through this running server "
                             "(tcp:HOST:PORT), for --seconds, writing --answers")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--answers", type=Path)
    args = parser.parse_args(argv)
    if args.drive:
        if args.answers is None:
            parser.error("--drive needs --answers")
        port = int(args.drive.rsplit(":", 1)[1])
        secret = os.environ["JGSL_COMPONENT_SECRET"]
        task.react(lambda reactor: drive(reactor, port, secret, args.seconds, args.window,
                                         args.request, args.reply, args.answers))
        return
    args.server = [s.strip() for s in args.server.split(",") if s.strip()]
    if not set(args.server) <= {"embedded", "prosody"}:
        parser.error("--server takes embedded and/or prosody")
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if args.smoke:
        args.stanzas, args.window = 400, 50
    task.react(_measure_all, [args])


@defer.inlineCallbacks
def _measure_all(reactor, args):
    results: dict = {"stanzas": args.stanzas, "window": args.window}
    yield run(reactor, args, results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
