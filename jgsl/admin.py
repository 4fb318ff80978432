"""``jgsl-admin shutdown|reload``: ask gateways or grid processes to shut down or reload.

Connects to the XMPP server's component port as an admin component (``--name``, one of the
JIDs the target lists in ``--admin`` or /JGSL/Admin) with the component secret
(``$JGSL_COMPONENT_SECRET`` or ``--secret-file``).

Admin messages are sealed (docs/security.md) with the admin secret: ``--admin-secret-file``,
else ``$JGSL_ADMIN_SECRET``, else the ticket secret (``--ticket-secret-file`` or
``$JGSL_TICKET_SECRET``), as the targets are configured; replies are accepted only sealed
with it too.

``shutdown`` sends one ADMIN_SHUTDOWN to each target and disconnects (there is no reply).
``reload`` sends one ADMIN_RELOAD to each target and waits (at most ``--timeout`` seconds)
for each ADMIN_RELOAD_REPLY; it prints them and exits 0 only if every target answered ok.
A target that never answers (not running, or we are not one of its admins: it drops the
request with a log line) is named when the time is up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from twisted.internet import defer, task
from twisted.internet.endpoints import clientFromString
from twisted.words.protocols.jabber import component, xmlstream

from jgsl.core.jids import bare
from jgsl.core.seal import Sealer, SealKeys
from jgsl.core.tickets import DEV_TICKET_SECRET
from jgsl.wire import jgsl_pb2 as pb
from jgsl.wire.codec import CodecError, Envelope, decode, encode


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jgsl-admin", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["shutdown", "reload"])
    parser.add_argument("targets", nargs="+", help="component JIDs to shut down or reload")
    parser.add_argument("--xmpp", default="tcp:127.0.0.1:5347",
                        help="component port of the XMPP server or router")
    parser.add_argument("--name", default="admin.localhost", help="this admin component's JID")
    parser.add_argument("--secret-file", help="component secret (else $JGSL_COMPONENT_SECRET)")
    parser.add_argument("--admin-secret-file",
                        help="admin secret (else $JGSL_ADMIN_SECRET, else the ticket secret)")
    parser.add_argument("--ticket-secret-file",
                        help="ticket secret, used when no admin secret is set "
                        "(else $JGSL_TICKET_SECRET)")
    parser.add_argument("--reason", default="", help="shutdown: logged by the target")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="reload: seconds to wait for every target's reply")
    args = parser.parse_args(argv)
    if not 0 < args.timeout <= 3600:
        parser.error("--timeout must be between 0 and 3600 seconds")
    if args.secret_file:
        args.secret = Path(args.secret_file).read_text().strip()
    else:
        args.secret = os.environ.get("JGSL_COMPONENT_SECRET", "jgsl-dev-secret")
    admin = _read(args.admin_secret_file) or os.environ.get("JGSL_ADMIN_SECRET", "")
    ticket = (_read(args.ticket_secret_file) or os.environ.get("JGSL_TICKET_SECRET")
              or DEV_TICKET_SECRET.decode())
    args.sealer = Sealer(SealKeys.from_secrets(ticket.encode(), admin.encode() or None))
    return args


def _read(path: str | None) -> str:
    return Path(path).read_text().strip() if path else ""


def sealed(sealer: Sealer, message, target: str, sender: str) -> str:
    """The stanza of an admin message, sealed for ``target``."""
    envelope = Envelope(sender, target, message)
    sealer.seal(envelope, time.time())
    return encode(message, target, sender)


class ReloadReplies:
    """Which targets answered ADMIN_RELOAD and how; ``done`` fires with the exit code."""

    def __init__(self, targets: list[str], sealer: Sealer) -> None:
        self.sealer = sealer
        self.pending = {bare(t): t for t in targets}
        self.failed = False
        self.done: defer.Deferred = defer.Deferred()

    def stanza(self, stanza) -> None:
        sender = bare(stanza.getAttribute("from", ""))
        if sender not in self.pending:
            return
        if stanza.getAttribute("type") == "error":
            self._answer(sender, False, f"{sender}: unreachable (the server bounced the request)")
            return
        try:
            envelope = decode(stanza)
        except CodecError as e:
            print(f"{sender}: unreadable reply ignored: {e}", file=sys.stderr)
            return
        message = envelope.message
        if not isinstance(message, pb.AdminReloadReply):
            return
        problem = self.sealer.problem(envelope, time.time())
        if problem is not None:
            print(f"{sender}: reply ignored: {problem}", file=sys.stderr)
            return
        if message.ok:
            text = f"{sender}: ok, {message.reloaded} script(s) reloaded"
        else:
            text = f"{sender}: reload refused, the old scripts keep running"
            text += "".join(f"\n  {error}" for error in message.errors)
        self._answer(sender, message.ok, text)

    def _answer(self, sender: str, ok: bool, text: str) -> None:
        del self.pending[sender]
        self.failed |= not ok
        print(text)
        if not self.pending:
            self.finish(1 if self.failed else 0)

    def timed_out(self, seconds: float) -> None:
        print(f"no reply within {seconds:g} s from {', '.join(self.pending.values())} (not "
              f"running, or {'they do' if len(self.pending) > 1 else 'it does'} not list "
              f"this component as an admin)", file=sys.stderr)
        self.finish(1)

    def finish(self, code: int) -> None:
        if not self.done.called:
            self.done.callback(code)


@defer.inlineCallbacks
def run(reactor, args: argparse.Namespace):
    factory = component.componentFactory(args.name, args.secret)
    factory.noisy = False
    done: defer.Deferred = defer.Deferred()
    replies = ReloadReplies(args.targets, args.sealer)

    def finish(code: int) -> None:
        if not done.called:
            done.callback(code)

    def shutdown(xs) -> None:
        for target in args.targets:
            xs.send(sealed(args.sealer, pb.AdminShutdown(reason=args.reason), target,
                           args.name))
        print(f"ADMIN_SHUTDOWN sent to {', '.join(args.targets)}")
        xs.sendFooter()
        reactor.callLater(0.5, xs.transport.loseConnection)
        reactor.callLater(0.6, finish, 0)

    def reload(xs) -> None:
        xs.addObserver("/message", replies.stanza)
        timer = reactor.callLater(args.timeout, replies.timed_out, args.timeout)

        def over(code: int) -> int:
            if timer.active():
                timer.cancel()
            finish(code)
            xs.sendFooter()
            xs.transport.loseConnection()
            return code

        replies.done.addCallback(over)
        for target in args.targets:
            xs.send(sealed(args.sealer, pb.AdminReload(), target, args.name))

    def lost(reason) -> None:
        if not done.called:
            print(f"connection to {args.xmpp} lost: {reason.getErrorMessage()}",
                  file=sys.stderr)
            finish(1)

    def failed(reason) -> None:
        print(f"sign-in as {args.name} failed: {reason.getErrorMessage()}", file=sys.stderr)
        finish(1)

    factory.addBootstrap(xmlstream.INIT_FAILED_EVENT, failed)
    if args.command == "reload":
        factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, reload)
        factory.addBootstrap(xmlstream.STREAM_END_EVENT, lost)
    else:
        factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, shutdown)
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
