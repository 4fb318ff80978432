"""``jgsl-admin``: an operator's view of a running world, and its levers.

Commands (``jgsl-admin COMMAND --help`` for each):

- ``status``: gateways, grid processes, nodes with region, users and load, uptime;
- ``users [NODE]``: the agents on every node (or node ID, or GRID/ID);
- ``kick USER [REASON]``: send a user off (SC_Closing; its agent is saved);
- ``drain GRID`` / ``undrain GRID``: stop giving a grid process regions and move its users
  off gracefully (they log in again and are served elsewhere) / give it regions again;
- ``query``: a CS_QUERY to the gateway (time, uptime, agents, nodes);
- ``dump on|off TARGET... [--user JID] [--type NAME]``: switch a running process's message
  dump, filtered;
- ``reload TARGET...``: reload changed Lua scripts; ``shutdown TARGET...``: stop gracefully.

It connects to the XMPP server's component port as an admin component (``--name``, one of
the JIDs the targets list in ``--admin`` or /JGSL/Admin) with the component secret, read as
the daemons read it: ``--secret-file``, else ``$JGSL_COMPONENT_SECRET``, else the config's
/JGSL/XMPP secret_file or secret, else the development default. Admin messages are sealed
(docs/security.md) with the admin secret: ``--admin-secret-file``, else
``$JGSL_ADMIN_SECRET``, else the ticket secret (``--ticket-secret-file``, else
``$JGSL_TICKET_SECRET``); replies are believed only sealed with it too. ``--json`` prints
what the processes answered as JSON. The exit status is 0 only if every target answered ok.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from itertools import count
from pathlib import Path

from twisted.internet import defer, task
from twisted.internet.endpoints import clientFromString
from twisted.words.protocols.jabber import component, xmlstream

from jgsl.core.jids import bare
from jgsl.core.seal import Sealer, SealKeys
from jgsl.core.tickets import DEV_TICKET_SECRET
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import CodecError, Envelope, decode, encode

CONFIG = Path(__file__).resolve().parents[1] / "config" / "jgsl.config.xml"
DEV_SECRET = "jgsl-dev-secret"


#: The docstring's first paragraph, for --help (without its reST quotes).
SUMMARY = __doc__.split("\n\n")[0].replace("``", "")

def parse(argv: list[str]) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--xmpp", default=None,
                        help="component port of the XMPP server or router (default: the "
                             "config's, else tcp:127.0.0.1:5347)")
    common.add_argument("--config", default=str(CONFIG),
                        help="the world's jgsl.config.xml: domain and secret defaults")
    common.add_argument("--name", default=None,
                        help="this admin component's JID (default admin.<domain>)")
    common.add_argument("--gateway", default=None,
                        help="gateway JID(s), comma-separated (default gateway.<domain>)")
    common.add_argument("--secret-file", help="component secret (else $JGSL_COMPONENT_SECRET, "
                        "else the config's)")
    common.add_argument("--admin-secret-file",
                        help="admin secret (else $JGSL_ADMIN_SECRET, else the ticket secret)")
    common.add_argument("--ticket-secret-file",
                        help="ticket secret, used when no admin secret is set "
                        "(else $JGSL_TICKET_SECRET)")
    common.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for every answer")
    common.add_argument("--json", action="store_true", help="print the answers as JSON")
    parser = argparse.ArgumentParser(prog="jgsl-admin", description=SUMMARY,
                                     epilog="Run 'jgsl-admin COMMAND --help' for a command.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("status", parents=[common], help="gateways, grids, nodes, users")
    users = commands.add_parser("users", parents=[common], help="the agents on the nodes")
    users.add_argument("node", nargs="?", help="node ID, or GRID/ID (default: every node)")
    kick = commands.add_parser("kick", parents=[common], help="send a user off")
    kick.add_argument("user")
    kick.add_argument("reason", nargs="?", default="")
    for name, text in (("drain", "move a grid process's users off, give it no regions"),
                       ("undrain", "give a drained grid process regions again")):
        commands.add_parser(name, parents=[common], help=text).add_argument("grid")
    commands.add_parser("query", parents=[common], help="CS_QUERY the gateway")
    dump = commands.add_parser("dump", parents=[common], help="switch a message dump")
    dump.add_argument("switch", choices=["on", "off"])
    dump.add_argument("targets", nargs="+", help="component JIDs")
    dump.add_argument("--user", help="only messages to or from this JID")
    dump.add_argument("--type", help="only this message type (e.g. CS_NormalUpdate)")
    reload = commands.add_parser("reload", parents=[common], help="reload changed scripts")
    reload.add_argument("targets", nargs="+", help="component JIDs")
    shutdown = commands.add_parser("shutdown", parents=[common], help="stop gracefully")
    shutdown.add_argument("targets", nargs="+", help="component JIDs")
    shutdown.add_argument("--reason", default="", help="logged by the target")
    args = parser.parse_args(argv)
    if not 0 < args.timeout <= 3600:
        parser.error("--timeout must be between 0 and 3600 seconds")
    _defaults(parser, args)
    return args


def _defaults(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Domain, server and secrets as the daemons find them (jgsl.tap.Options)."""
    xmpp: dict[str, str] = {}
    try:
        from jgsl.config import ConfigError, load_config

        xmpp = load_config(args.config).xmpp
    except (OSError, ConfigError) as e:
        if args.config != str(CONFIG):
            parser.error(f"--config {args.config}: {e}")
    domain = xmpp.get("domain") or "localhost"
    args.xmpp = args.xmpp or xmpp.get("server") or "tcp:127.0.0.1:5347"
    args.name = args.name or f"admin.{domain}"
    args.gateways = [g.strip() for g in (args.gateway or f"gateway.{domain}").split(",")
                     if g.strip()]
    if args.secret_file:
        args.secret = _read(args.secret_file)
    else:
        args.secret = os.environ.get("JGSL_COMPONENT_SECRET") or (
            _read(xmpp["secret_file"]) if xmpp.get("secret_file") else xmpp.get("secret")) \
            or DEV_SECRET
    admin = _read(args.admin_secret_file) or os.environ.get("JGSL_ADMIN_SECRET", "")
    ticket = (_read(args.ticket_secret_file) or os.environ.get("JGSL_TICKET_SECRET")
              or DEV_TICKET_SECRET.decode())
    args.sealer = Sealer(SealKeys.from_secrets(ticket.encode(), admin.encode() or None))


def _read(path: str | None) -> str:
    return Path(path).read_text().strip() if path else ""


def sealed(sealer: Sealer, message, target: str, sender: str) -> str:
    """The stanza of an admin message, sealed for ``target``."""
    envelope = Envelope(sender, target, message)
    sealer.seal(envelope, time.time())
    return encode(message, target, sender)


class Session:
    """One admin connection: sends sealed messages and collects the sealed answers."""

    def __init__(self, reactor, args: argparse.Namespace, xs) -> None:
        self.reactor, self.args, self.xs = reactor, args, xs
        self._waiting: dict[tuple[str, int], defer.Deferred] = {}
        self._requests = count(1)
        self._queries: dict[str, defer.Deferred] = {}
        xs.addObserver("/message", self._stanza)

    def _stanza(self, stanza) -> None:
        sender = bare(stanza.getAttribute("from", ""))
        if stanza.getAttribute("type") == "error":
            for (target, request), waiting in list(self._waiting.items()):
                if bare(target) == sender:
                    del self._waiting[(target, request)]
                    waiting.callback((False, f"{sender}: unreachable (the server bounced the "
                                             "request)", None))
            return
        try:
            envelope = decode(stanza)
        except CodecError as e:
            print(f"{sender}: unreadable answer ignored: {e}", file=sys.stderr)
            return
        message = envelope.message
        if isinstance(message, pb.QueryReply):
            waiting = self._queries.pop(message.csk, None)
            if waiting is not None:
                waiting.callback(message)
            return
        if not isinstance(message, pb.AdminCommandReply | pb.AdminReloadReply):
            return
        problem = self.args.sealer.problem(envelope, time.time())
        if problem is not None:
            print(f"{sender}: answer ignored: {problem}", file=sys.stderr)
            return
        request = message.request if isinstance(message, pb.AdminCommandReply) else 0
        key = next((k for k in self._waiting if bare(k[0]) == sender and k[1] == request),
                   None)
        if key is None:
            return
        waiting = self._waiting.pop(key)
        if isinstance(message, pb.AdminReloadReply):
            text = (f"{sender}: ok, {message.reloaded} script(s) reloaded" if message.ok else
                    f"{sender}: reload refused, the old scripts keep running"
                    + "".join(f"\n  {error}" for error in message.errors))
            waiting.callback((message.ok, text, {"reloaded": message.reloaded,
                                                 "errors": list(message.errors)}))
        else:
            waiting.callback((message.ok, message.text, json.loads(message.json or "{}")))

    def _wait(self, target: str, request: int) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self._waiting[(target, request)] = d
        timeout = self.args.timeout

        def late() -> None:
            if self._waiting.pop((target, request), None) is d:
                d.callback((False, f"no reply within {timeout:g} s from {target} (not "
                                   "running, or it does not list this component as an admin)",
                            None))

        timer = self.reactor.callLater(timeout, late)
        return d.addBoth(lambda result: (timer.active() and timer.cancel(), result)[1])

    def command(self, target: str, command: str, *args: str) -> defer.Deferred:
        """(ok, text, data) of ``target``'s answer to an ADMIN_COMMAND."""
        request = next(self._requests)
        answer = self._wait(target, request)
        self.xs.send(sealed(self.args.sealer, pb.AdminCommand(
            command=command, args=list(args), request=request), target, self.args.name))
        return answer

    def reload(self, target: str) -> defer.Deferred:
        answer = self._wait(target, 0)
        self.xs.send(sealed(self.args.sealer, pb.AdminReload(), target, self.args.name))
        return answer

    def query(self, gateway: str) -> defer.Deferred:
        csk = secrets.token_hex(8)
        d: defer.Deferred = defer.Deferred()
        self._queries[csk] = d
        self.xs.send(encode(pb.Query(csk=csk), gateway, self.args.name))
        timer = self.reactor.callLater(self.args.timeout, lambda: self._queries.pop(csk, None)
                                       and d.callback(None))
        return d.addBoth(lambda result: (timer.active() and timer.cancel(), result)[1])


@defer.inlineCallbacks
def _grids(session: Session):
    """The grid processes the gateways know (from their ``status``)."""
    answers = yield defer.gatherResults([session.command(g, "status")
                                         for g in session.args.gateways])
    grids: list[str] = []
    for ok, _, data in answers:
        for grid in (data or {}).get("grids", []) if ok else []:
            if grid["jid"] not in grids:
                grids.append(grid["jid"])
    return grids


@defer.inlineCallbacks
def perform(session: Session, args: argparse.Namespace):
    """Run the command; the answers as (target, ok, text, data)."""
    command = args.command
    if command == "status":
        answers = yield defer.gatherResults([session.command(g, "status")
                                             for g in args.gateways])
        return list(zip(args.gateways, *zip(*answers, strict=True), strict=True))
    if command in ("users", "kick"):
        grids = yield _grids(session)
        node = args.node if command == "users" else None
        if node and "/" in node:
            only, node = node.rsplit("/", 1)
            grids = [g for g in grids if g == only]
        extra = ([node] if node else []) if command == "users" else \
            [args.user, *([args.reason] if args.reason else [])]
        answers = yield defer.gatherResults([session.command(g, command, *extra)
                                             for g in grids])
        results = list(zip(grids, *zip(*answers, strict=True), strict=True)) if grids else []
        if command == "kick" and any(ok for _, ok, _, _ in results):
            # the user was on one grid: the others' "not here" is no failure
            results = [r for r in results if r[1]]
        if not results:
            return [("", False, "no grid process answered the gateways' status", None)]
        return results
    if command in ("drain", "undrain"):
        answers = yield defer.gatherResults([session.command(g, command, args.grid)
                                             for g in args.gateways])
        results = list(zip(args.gateways, *zip(*answers, strict=True), strict=True))
        if command == "drain" and all(ok for _, ok, _, _ in results):
            answer = yield session.command(args.grid, "drain")
            results.append((args.grid, *answer))
        return results
    if command == "query":
        reply = yield session.query(args.gateways[0])
        if reply is None:
            return [(args.gateways[0], False, "no answer to CS_QUERY", None)]
        result = reply.result
        data = {"systime_ms": result.systime, "uptime_s": round(result.uptime, 1),
                "agents": result.agentcount,
                "nodes": [{"id": n.id, "jid": n.jid, "world": n.worldpath, "gx": n.gx,
                           "gy": n.gy, "agents": n.agents} for n in result.nodes]}
        text = "\n".join([f"{args.gateways[0]}: up {result.uptime:.0f} s, "
                          f"{result.agentcount} agent(s), {len(result.nodes)} node(s)"]
                         + [f"  node {n['id']} on {n['jid']}: {n['world']} {n['gx']},"
                            f"{n['gy']}, {n['agents']} agent(s)" for n in data["nodes"]])
        return [(args.gateways[0], True, text, data)]
    if command == "dump":
        extra = [args.switch, *(f"{k}={v}" for k, v in (("user", args.user),
                                                          ("type", args.type)) if v)]
        answers = yield defer.gatherResults([session.command(t, "dump", *extra)
                                             for t in args.targets])
        return list(zip(args.targets, *zip(*answers, strict=True), strict=True))
    if command == "reload":
        answers = yield defer.gatherResults([session.reload(t) for t in args.targets])
        return list(zip(args.targets, *zip(*answers, strict=True), strict=True))
    raise ValueError(command)


@defer.inlineCallbacks
def run(reactor, args: argparse.Namespace):
    factory = component.componentFactory(args.name, args.secret)
    factory.noisy = False
    ready: defer.Deferred = defer.Deferred()
    factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT,
                         lambda xs: ready.called or ready.callback(xs))
    factory.addBootstrap(xmlstream.INIT_FAILED_EVENT, lambda reason: ready.called or
                         ready.errback(reason))
    endpoint = clientFromString(reactor, args.xmpp)
    try:
        yield endpoint.connect(factory)
        xs = yield ready
    except Exception as e:  # noqa: BLE001 - any failure to connect or sign in is reported
        message = e.getErrorMessage() if hasattr(e, "getErrorMessage") else str(e)
        print(f"cannot sign in to {args.xmpp} as {args.name}: {message}", file=sys.stderr)
        raise SystemExit(1) from None
    if args.command == "shutdown":
        for target in args.targets:
            xs.send(sealed(args.sealer, pb.AdminShutdown(reason=args.reason), target,
                           args.name))
        print(f"ADMIN_SHUTDOWN sent to {', '.join(args.targets)}")
        results = [(t, True, "", None) for t in args.targets]
        yield task.deferLater(reactor, 0.5, lambda: None)  # (written before we hang up)
    else:
        results = yield perform(Session(reactor, args, xs), args)
        if args.json:
            print(json.dumps([{"target": t, "ok": ok, "text": text, "data": data}
                              for t, ok, text, data in results], indent=1))
        else:
            for _, ok, text, data in results:
                # (an answer, even "no", is output; silence and bounces are errors)
                print(text, file=sys.stdout if ok or data is not None else sys.stderr)
    xs.sendFooter()
    xs.transport.loseConnection()
    if not all(ok for _, ok, _, _ in results):
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    task.react(run, [args])


if __name__ == "__main__":
    main()
