"""``jgsl-load``: run N generated users against a JGSL world and report what they saw.

    jgsl-load --embedded --users 200 --duration 30          # router, gateway, grid in-process
    jgsl-load --xmpp tcp:127.0.0.1:5347 --users 500         # against a running world

Users log in over ``--ramp`` seconds (a progress bar shows it), walk about for
``--duration`` seconds, and log out. The report (logins ok/refused, re-logins, timeouts,
dead grid nodes, updates per second, round-trip time p50/p95/p99, bytes per update) is
printed and written to ``--out``/report.json, with a plot of RTT over time in rtt.png;
``--answers FILE`` also writes every answered update's (time, round trip), as bench/e2e.py
reads them to count what was answered in windows of its own.
With an external XMPP server (Prosody, ejabberd), the server must accept the component
``--name`` with the component secret ($JGSL_COMPONENT_SECRET).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from array import array
from pathlib import Path

from twisted.internet import defer, task
from twisted.internet.endpoints import clientFromString
from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEventAsClassicLogText,
    globalLogBeginner,
)

from jgsl.collector import FULL_INTERVAL, ScheduledCollector
from jgsl.compiled import stale_compiled
from jgsl.config import load_config
from jgsl.core.client import ClientSettings
from jgsl.core.gateway import GatewayCore
from jgsl.core.gridprocess import GridProcessCore
from jgsl.core.load import LoadCore, LoadSettings, Recorder
from jgsl.tap import (
    CONFIG_DIR,
    DEV_SECRET,
    SECRET_ENV,
)
from jgsl.xmpp.link import ComponentService
from jgsl.xmpp.router import RouterService

#: The docstring's first paragraph, for --help (without its reST quotes).
SUMMARY = __doc__.split("\n\n")[0].replace("``", "")

def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="jgsl-load", description=SUMMARY)
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--duration", type=float, default=20.0, help="seconds after the ramp")
    p.add_argument("--ramp", type=float, default=5.0, help="seconds over which users log in")
    p.add_argument("--update-interval", type=float, default=1.0)
    p.add_argument("--request-timeout", type=float, default=5.0,
                   help="longest wait for an answer (sooner after measured round trips)")
    p.add_argument("--fixed-timeout", action="store_true",
                   help="always wait --request-timeout (a run whose load generator is "
                   "stopped for seconds at a time, as bench/e2e.py's interleaved limit)")
    p.add_argument("--embedded", action="store_true",
                   help="run a router, gateway and grid process in this process")
    p.add_argument("--xmpp", default="tcp:127.0.0.1:5347",
                   help="router or XMPP server component port (without --embedded)")
    p.add_argument("--domain", default="localhost")
    p.add_argument("--name", default=None, help="the load component's JID (load.<domain>)")
    p.add_argument("--gateway", default=None,
                   help="gateway JID(s), comma-separated (default gateway.<domain>): users "
                        "spread over them by a hash of their JID and fail over to the next")
    p.add_argument("--config", default=str(CONFIG_DIR / "jgsl.config.xml"))
    p.add_argument("--world", default="worlds/MyWorlds/AlphaWorld/")
    p.add_argument("--center", default="20100,20100", help="x,z the users gather around")
    p.add_argument("--radius", type=float, default=80.0)
    p.add_argument("--behaviour", choices=("stand", "wander"), default="wander")
    p.add_argument("--no-corners", action="store_true",
                   help="talk only to the node under each user (no neighbour observation)")
    p.add_argument("--thin", action="store_true",
                   help="thin clients: echo frames without decoding the other agents (the "
                        "server's work is the same; the load generator's is far less)")
    p.add_argument("--full-gc-interval", type=float, default=FULL_INTERVAL,
                   help="seconds between full garbage collections (jgsl.collector)")
    p.add_argument("--stagger", type=int, default=20,
                   help="tick 1/N of the users every 0.1/N s instead of all every 0.1 s: "
                        "their updates go out spread over time, as real players' do, not in "
                        "bursts (1: all at once)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("load-report"))
    p.add_argument("--verbose", action="store_true", help="show the daemon's log lines")
    p.add_argument("--answers", type=Path, default=None,
                   help="write (wall-clock time, round-trip seconds) of every answered update, "
                        "from the first login on, to this file (see read_answers)")
    args = p.parse_args(argv)
    if args.users < 1 or args.duration <= 0 or args.ramp < 0:
        p.error("--users must be positive, --duration positive, --ramp not negative")
    try:
        x, z = (float(v) for v in args.center.split(","))
    except ValueError:
        p.error("--center must be x,z")
    if not 1 <= args.stagger <= 100:
        p.error("--stagger must be 1..100")
    args.center = (x, z)
    args.name = args.name or f"load.{args.domain}"
    args.gateway = args.gateway or f"gateway.{args.domain}"
    return args


def write_answers(path: Path, rtts: list[tuple[float, float]]) -> None:
    """(time, round trip) pairs as native float64s: 16 bytes each, written in one go."""
    flat = array("d")
    for when, rtt in rtts:
        flat.append(when)
        flat.append(rtt)
    path.write_bytes(flat.tobytes())


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile of ``values`` (None if there are none)."""
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]


def read_answers(path: Path) -> list[tuple[float, float]]:
    """What L{write_answers} wrote."""
    flat = array("d")
    flat.frombytes(path.read_bytes())
    return list(zip(flat[0::2], flat[1::2], strict=True))


def plot(report: dict, rtts: list[tuple[float, float]], start: float, path: Path,
         series: list[dict] | None = None) -> bool:
    """RTT over time as a PNG, and below it the rate and p99 per second over the whole run
    (``series``, from the login ramp on); False if matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax, below) = plt.subplots(2, 1, figsize=(9, 7.5), dpi=100,
                                    gridspec_kw={"height_ratios": [3, 2]})
    if rtts:
        ax.scatter([t - start for t, _ in rtts], [r * 1000 for _, r in rtts], s=3, alpha=0.4,
                   label="update round trip")
    for key, style in (("p50", "--"), ("p99", ":")):
        value = report["rtt_ms"][key]
        if value is not None:
            ax.axhline(value, linestyle=style, color="black", linewidth=1,
                       label=f"{key} {value} ms")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("round-trip time (ms)")
    ax.set_title(f"JGSL load: {report['users']} users, "
                 f"{report['updates_sent_per_s']} updates/s")
    ax.legend(loc="upper right")
    points = series or []
    times = [p["t"] for p in points]
    below.plot(times, [p["answers_per_s"] for p in points], color="tab:blue",
               label="answered updates/s")
    below.set_xlabel("seconds since the first login")
    below.set_ylabel("updates/s", color="tab:blue")
    p99 = below.twinx()
    p99.plot(times, [p["p99_ms"] if p["p99_ms"] is not None else float("nan")
                     for p in points], color="tab:red", label="p99 RTT (ms)")
    p99.set_ylabel("p99 round trip (ms), per second", color="tab:red")
    timeouts = [(p["t"], p["timeouts"]) for p in points if p["timeouts"]]
    if timeouts:
        below.scatter([t for t, _ in timeouts], [0] * len(timeouts), marker="x",
                      color="black", label="timeouts")
    below.set_title("rate and p99 over time (the login ramp included)")
    below.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


@defer.inlineCallbacks
def run(reactor, args: argparse.Namespace):
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    console = Console(stderr=True)
    if args.verbose:
        globalLogBeginner.beginLoggingTo([FilteringLogObserver(
            FileLogObserver(console.file, formatEventAsClassicLogText),
            [LogLevelFilterPredicate(LogLevel.info)])], redirectStandardIO=False)
    else:
        globalLogBeginner.beginLoggingTo([FilteringLogObserver(
            FileLogObserver(console.file, formatEventAsClassicLogText),
            [LogLevelFilterPredicate(LogLevel.error)])], redirectStandardIO=False)
    secret = os.environ.get(SECRET_ENV, DEV_SECRET)
    services = []
    if args.embedded:
        router = RouterService(reactor, "tcp:0:interface=127.0.0.1", secret)
        router.startService()
        services.append(router)

        def endpoint():
            return clientFromString(reactor, f"tcp:127.0.0.1:{router.address[1]}")

        world = load_config(args.config)
        now = reactor.seconds()
        first = args.gateway.split(",")[0]  # (the embedded world has one gateway)
        for jid, core in (
            (first, GatewayCore(first, world.rules, world.gateway_settings(), start=now)),
            (f"grid1.{args.domain}", GridProcessCore(f"grid1.{args.domain}", [first],
                                                     world.grid_settings(), start=now,
                                                     maps=world.string_maps())),
        ):
            services.append(ComponentService(reactor, jid, secret, endpoint, core))
    else:
        def endpoint():
            return clientFromString(reactor, args.xmpp)

    recorder = Recorder()
    settings = LoadSettings(users=args.users, ramp=args.ramp, worldpath=args.world,
                            center=args.center, radius=args.radius, behaviour=args.behaviour,
                            seed=args.seed, stagger=args.stagger)
    client_settings = ClientSettings(update_interval=args.update_interval,
                                     request_timeout=args.request_timeout,
                                     adaptive_timeout=not args.fixed_timeout,
                                     corners=not args.no_corners,
                                     track_others=not args.thin)
    gateways = [g.strip() for g in args.gateway.split(",") if g.strip()]
    core = LoadCore(args.name, gateways, settings, client_settings, recorder)
    load = ComponentService(reactor, args.name, secret, endpoint, core,
                            tick_interval=0.1 / args.stagger)
    services.append(load)
    # Full collections on a schedule, not Python's: one walk of 1,000 clients' state took 90 ms,
    # and every reply arriving meanwhile was charged for it.
    if args.full_gc_interval > 0:
        services.append(ScheduledCollector(reactor, interval=args.full_gc_interval))
    for service in services[1 if args.embedded else 0:]:
        service.startService()

    start = reactor.seconds()
    recorder.sample(start, start)
    next_sample = [start + 1.0]

    def figures() -> None:
        """The live figures, sampled once a second: rate, p50/p99, timeouts."""
        now = reactor.seconds()
        if now >= next_sample[0]:
            next_sample[0] = now + 1.0
            point = recorder.sample(now, start)
            p50, p99 = point["p50_ms"], point["p99_ms"]
            progress.update(live, description=(
                f"{point['answers_per_s']:>8.0f} updates/s   p50 "
                f"{'-' if p50 is None else f'{p50:.0f}'} ms   p99 "
                f"{'-' if p99 is None else f'{p99:.0f}'} ms   timeouts {recorder.timeouts}"))


    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
            "{task.completed}/{task.total}"), TimeElapsedColumn(), console=console) as progress:
        live = progress.add_task("(figures each second)", total=None)
        logins = progress.add_task("logging in", total=args.users)
        deadline = start + args.ramp + 30.0
        while recorder.logins_ok + recorder.logins_refused < args.users \
                and reactor.seconds() < deadline:
            progress.update(logins, completed=recorder.logins_ok + recorder.logins_refused)
            figures()
            yield task.deferLater(reactor, 0.2, lambda: None)
        progress.update(logins, completed=recorder.logins_ok + recorder.logins_refused)
        running = progress.add_task("walking", total=round(args.duration))
        steady = reactor.seconds()
        recorder.watch_gaps(steady, core.emu.clients)
        console.print(f"steady: {recorder.logins_ok} of {args.users} users logged in, "
                      f"walking for {args.duration:g} s")
        sent_before, received_before = recorder.sent, recorder.received
        rtts_before, bytes_out, bytes_in = len(recorder.rtts), recorder.bytes_out, recorder.bytes_in
        sized_out, sized_in = recorder.sized_out, recorder.sized_in
        while reactor.seconds() < steady + args.duration:
            progress.update(running, completed=round(reactor.seconds() - steady))
            figures()
            yield task.deferLater(reactor, 0.2, lambda: None)
        progress.update(running, completed=round(args.duration))
    ended = reactor.seconds()
    # The report covers the steady part, after everybody logged in.
    steady_recorder = Recorder(
        logins_ok=recorder.logins_ok, logins_refused=recorder.logins_refused,
        relogins=recorder.relogins, timeouts=recorder.timeouts,
        dead_proxies=recorder.dead_proxies, sent=recorder.sent - sent_before,
        received=recorder.received - received_before, bytes_out=recorder.bytes_out - bytes_out,
        bytes_in=recorder.bytes_in - bytes_in, sized_out=recorder.sized_out - sized_out,
        sized_in=recorder.sized_in - sized_in, rtts=recorder.rtts[rtts_before:])
    report = steady_recorder.report(args.users, steady, ended)
    report["ramp_s"] = round(steady - start, 2)
    # how long each user went without an answered update (a fault's cost, user by user)
    gaps = sorted(recorder.longest_gaps(ended).items(), key=lambda item: item[1])
    report["longest_gap_s"] = {
        "p50": round(percentile([g for _, g in gaps], 50), 2),
        "p99": round(percentile([g for _, g in gaps], 99), 2),
        "max": round(gaps[-1][1], 2), "worst_user": gaps[-1][0],
        "users_over_10s": sum(g > 10 for _, g in gaps)}
    report["embedded"] = args.embedded
    # per second over the whole run, the login ramp included (t: seconds since start)
    report["series"] = recorder.series
    for service in reversed(services):
        yield defer.maybeDeferred(service.stopService)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.answers is not None:
        write_answers(args.answers, recorder.rtts)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    plotted = plot(report, steady_recorder.rtts, steady, args.out / "rtt.png",
                   recorder.series)
    table = Table(title="JGSL load report")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in report.items():
        if key == "series":
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        table.add_row(key, str(value))
    Console().print(table)
    print(f"report: {args.out / 'report.json'}" + (f", plot: {args.out / 'rtt.png'}"
                                                    if plotted else " (no matplotlib: no plot)"))
    if report["logins_ok"] == 0:
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if stale := stale_compiled():
        print(f"warning: compiled {', '.join(stale)} older than the source, so old code runs; "
              "rebuild with ./dev test", file=sys.stderr)
    task.react(run, [args])


if __name__ == "__main__":
    main(sys.argv[1:])
