"""End to end: the load runner through the embedded router and through Prosody.

For each server, a gateway and a grid process run as separate twistd processes; the load
runner (another process) drives N users at each update interval, and the CPU of every
process is read from /proc. Then, at the largest N, JGSL flat out (each user's next update
as soon as the last was answered, within the grid's flood limit) is compared with a null
echo component bouncing stanzas of the same size at the same concurrency, also unpaced: the
router's own limit. The ratio JGSL rate / echo rate says what the game logic costs. A paced
echo (one stanza per sender per 0.1 s tick, as sessions 1-3 measured it) is run too.

Run one after the other, the two halves of a pair see different phases of this shared VM
(its speed wanders by a fifth within a minute), so the limit is also measured interleaved:
the load runner and the echo both run for the whole measurement, and in turn one is stopped
(SIGSTOP) while the other runs for a window (--window seconds, after 1 s to settle, not
counted); --rounds such rounds of windows. Two echoes take part: one bouncing JGSL-shaped
stanzas (a namespaced <jgsl/> child holding a base64 protobuf, as JGSL's) and the chat echo
above; each runs as two processes, component and driver, so that the servers' CPU (router
and echo component; router, gateway and grids) can be told from the load generators'.
Answers are counted by their own timestamps (jgsl-load --answers), CPU per process from
/proc at the window edges, so every side is measured under the same phases. --pin runs the
servers on CPU 1 and the load generators on CPU 0, as when clients are elsewhere.

    python bench/e2e.py [--servers embedded,prosody] [--users 100,500,1000]
                        [--intervals 1,3] [--duration 20] [--ramp 10] [--smoke]
                        [--grids N] [--thin] [--stagger N] [--pairs N] [--limit-only]
                        [--rounds N] [--window S] [--pin]

--grids runs N grid processes (one per core; the gateway spreads nodes over them); --thin
makes the load runner's clients echo frames without decoding the other agents (jgsl-load
--thin): the servers do the same work, the load generator about half; --stagger (default 20)
has the load runner tick 1/N of its users every 0.1/N s, so their updates go out spread over
time as real players' do, not all at once every 0.1 s. --pairs N measures the limit N times
in turn (the ratio wanders with this shared machine), --limit-only skips the runs at 1 Hz
and 3 s.

Writes bench/results/e2e.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
TWISTD = str(Path(sys.executable).with_name("twistd"))
TICK = os.sysconf("SC_CLK_TCK")
#: Update interval of the flat-out run: a grid accepts 20 updates a second per user and node
#: (jgsl.core.flood); an answer later than this brings the next update at once.
FLAT_OUT = 0.05
#: Seconds at the start of each interleaved window not counted: what the stopped side left
#: in the queues drains, and the side that resumed refills its pipeline.
SETTLE = 1.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def stolen_seconds() -> float:
    """CPU seconds the hypervisor gave other guests (/proc/stat steal), all cores."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / TICK if len(fields) > 8 else 0.0


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


class World:
    """A server (embedded router or Prosody) with a gateway and a grid process."""

    def __init__(self, server: str, workdir: Path, grids: int = 1) -> None:
        self.server, self.workdir, self.grids = server, workdir, grids
        self.env = {**os.environ, "JGSL_COMPONENT_SECRET": secrets.token_hex(8),
                    "JGSL_TICKET_SECRET": secrets.token_hex(16)}
        self.procs: dict[str, subprocess.Popen] = {}
        self.prosody = None

    def _twistd(self, name: str, *args: str) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed below
        self.procs[name] = subprocess.Popen([TWISTD, "-n", "--pidfile=", "jgsl", *args],
                                            stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.workdir, env=self.env)
        log.close()

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def start(self) -> str:
        if self.server == "embedded":
            port_file = self.workdir / "router.port"
            self._twistd("router", "--role", "router", "--listen",
                         "tcp:0:interface=127.0.0.1", "--port-file", str(port_file))
            wait_for(port_file.exists, 30, "the router")
            xmpp = f"tcp:127.0.0.1:{port_file.read_text().strip()}"
            self.server_pid = self.procs["router"].pid
        else:
            from jgsl.prosody import DevProsody

            names = ("gateway", "load", "echo", "drive", "echo2", "drive2", "src", "dst",
                     *(f"grid{i}" for i in range(1, self.grids + 1)))
            self.prosody = DevProsody({f"{n}.localhost": self.env["JGSL_COMPONENT_SECRET"]
                                       for n in names})
            self.prosody.start()
            xmpp = f"tcp:127.0.0.1:{self.prosody.component_port}"
            self.server_pid = self.prosody.proc.pid
        self._twistd("gateway", "--role", "gateway", "--xmpp", xmpp)
        for i in range(1, self.grids + 1):
            # No game scripts: the benchmark measures the server, not the demo guard.
            self._twistd(f"grid{i}", "--role", "grid", "--xmpp", xmpp, "--scripts", "none",
                         "--name", f"grid{i}.localhost")
            wait_for(lambda i=i: f"grid process grid{i}.localhost registered"
                     in self.log("gateway"), 30, "the grid to register")
        return xmpp

    def pids(self) -> dict[str, int]:
        """The world's processes; grid1, grid2... are reported together as "grid"."""
        return {"server": self.server_pid, "gateway": self.procs["gateway"].pid,
                **{f"grid{i}": self.procs[f"grid{i}"].pid for i in range(1, self.grids + 1)}}

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.prosody is not None:
            self.prosody.stop()


def measured(world: World, command: list[str]) -> tuple[subprocess.CompletedProcess, dict]:
    """Run a client process; CPU cores used by it and by every world process meanwhile, and
    cores stolen from the machine by its hypervisor ("stolen")."""
    pids = world.pids()
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    stolen = stolen_seconds()
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=world.env,
                            cwd=ROOT, timeout=900)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu: dict[str, float] = {}
    each: list[float] = []  # per grid process: an unbalanced spread of tiles shows here
    for name, pid in pids.items():
        used = (cpu_seconds(pid) - before[name]) / wall
        key = "grid" if name.startswith("grid") else name
        cpu[key] = round(cpu.get(key, 0) + used, 3)
        if key == "grid":
            each.append(round(used, 3))
    cpu["client"] = round((after.ru_utime + after.ru_stime - children.ru_utime
                           - children.ru_stime) / wall, 3)
    # Cores the hypervisor took for other guests meanwhile: when this is high, so is noise.
    cpu["stolen"] = round((stolen_seconds() - stolen) / wall, 3)
    cpu["grid_each"] = each
    return result, cpu


def load_run(world: World, xmpp: str, users: int, interval: float, duration: float,
             ramp: float, corners: bool = True, thin: bool = False,
             stagger: int = 20) -> dict:
    out = world.workdir / f"load-{users}-{interval}"
    result, cpu = measured(world, [
        sys.executable, "-m", "jgsl.load", "--xmpp", xmpp, "--users", str(users),
        "--update-interval", str(interval), "--duration", str(duration), "--ramp", str(ramp),
        "--request-timeout", "10", "--radius", str(max(80, users ** 0.5 * 8)),
        "--out", str(out), *([] if corners else ["--no-corners"]),
        *(["--thin"] if thin else []), "--stagger", str(stagger)])
    if result.returncode != 0:
        raise RuntimeError(f"load run failed: {result.stderr[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    return {"users": users, "interval_s": interval, "cpu_cores": cpu, **{
        k: report[k] for k in ("logins_ok", "logins_refused", "timeouts", "dead_proxies",
                               "updates_sent_per_s", "updates_received_per_s", "rtt_ms",
                               "bytes_per_update_out", "bytes_per_update_in")}}


def echo_run(world: World, xmpp: str, senders: int, size: int, duration: float,
             paced: bool = False) -> dict:
    result, cpu = measured(world, [
        sys.executable, str(ROOT / "bench" / "echo.py"), "--xmpp", xmpp,
        "--senders", str(senders), "--size", str(size), "--duration", str(duration),
        *(["--paced"] if paced else [])])
    if result.returncode != 0:
        raise RuntimeError(f"echo run failed: {result.stderr[-2000:]}")
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "cpu_cores": cpu}


def _percentile_ms(values: list[float], p: float) -> float | None:
    from jgsl.load import percentile

    value = percentile(values, p)
    return None if value is None else round(value * 1000, 2)


def interleaved_run(world: World, xmpp: str, n: int, size: int, args) -> dict:
    """JGSL flat out, the router's raw round trips and two echoes (JGSL-shaped stanzas,
    chat stanzas) in turn, each for a window while the others are stopped (SIGSTOP).

    The raw round trips (bench/router.py --drive: two components that write ready bytes and
    count what arrives, JGSL's request and reply sizes) are the physical limit: what the
    router alone can carry. JGSL's rate over theirs is ``over_router`` (issue 21's goal:
    0.5 through the embedded router, 0.8 through Prosody); ``echo_over_router`` is the null
    echo's (a Python component and driver, no game logic, on the same cores): the most any
    Python component pair reaches here, against which JGSL's ratio is to be read.

    Each echo runs as two processes, the echo component and its driver, so that the servers'
    CPU per round trip (router and echo component) can be told from the load generator's,
    as JGSL's (router, gateway, grids) from the load runner's. With ``args.pin`` the servers
    run on CPU 1 and the load generators (load runner, drivers) on CPU 0, as when the
    clients are elsewhere."""
    from jgsl.load import read_answers

    sides = ("jgsl", "router", "echo", "echo_chat")
    schedule = args.rounds * len(sides) * (SETTLE + args.window)
    start_up = args.ramp + 5.0  # logins are done before the first window
    files = {side: world.workdir / f"answers-{side}-{n}" for side in sides}
    procs: dict[str, list[subprocess.Popen]] = {side: [] for side in sides}
    all_cpus = os.sched_getaffinity(0)

    def start(side: str, command: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=world.env, cwd=ROOT)
        procs[side].append(proc)
        return proc

    def signal_side(side: str, signum: int) -> None:
        for proc in procs[side]:
            proc.send_signal(signum)

    watched: dict[str, dict[str, int]] = {}
    world_pids = world.pids()
    try:
        for side, shape, label in (("echo", "jgsl", ""), ("echo_chat", "chat", "2")):
            echo = [sys.executable, str(ROOT / "bench" / "echo.py"), "--xmpp", xmpp,
                    "--senders", str(n), "--size", str(size), "--shape", shape, "--label",
                    label, "--warmup", "0.5", "--duration", str(6.0 + start_up + schedule)]
            component = start(side, [*echo, "--part", "echo"])
            time.sleep(1.0)  # up before its driver
            driver = start(side, [*echo, "--part", "driver", "--answers", str(files[side])])
            watched[side] = {"server": world_pids["server"], "echo": component.pid,
                             "client": driver.pid}
            time.sleep(3.0)  # connected and bouncing
            signal_side(side, signal.SIGSTOP)
        raw = start("router", [sys.executable, str(ROOT / "bench" / "router.py"), "--drive",
                               xmpp, "--seconds", str(6.0 + start_up + schedule),
                               "--request", str(args.wire_sizes[0]),
                               "--reply", str(args.wire_sizes[1]),
                               "--answers", str(files["router"])])
        watched["router"] = {"server": world_pids["server"], "client": raw.pid}
        time.sleep(2.0)  # signed in and pipelining
        signal_side("router", signal.SIGSTOP)
        out = world.workdir / f"load-interleaved-{n}"
        load = start("jgsl", [
            sys.executable, "-m", "jgsl.load", "--xmpp", xmpp, "--users", str(n),
            "--update-interval", str(FLAT_OUT), "--duration", str(schedule + 2.0),
            "--ramp", str(args.ramp),
            # longer than the load runner is stopped for (the echoes' windows): an update
            # in flight then is answered, not timed out and sent again, when it resumes
            "--request-timeout", str(10.0 + (len(sides) - 1) * (SETTLE + args.window)),
            "--fixed-timeout",
            "--radius", str(max(80, n ** 0.5 * 8)), "--out", str(out), "--no-corners",
            *(["--thin"] if args.thin else []), "--stagger", str(args.stagger),
            "--answers", str(files["jgsl"])])
        watched["jgsl"] = {**world_pids, "client": load.pid}
        if args.pin:  # servers on CPU 1, load generators on CPU 0
            for pids in watched.values():
                for name, pid in pids.items():
                    os.sched_setaffinity(pid, {0} if name == "client" else {1})
        time.sleep(start_up)
        signal_side("jgsl", signal.SIGSTOP)
        windows = _take_turns(sides, signal_side, watched, args.rounds, args.window)
    except BaseException:
        for side_procs in procs.values():
            for proc in side_procs:
                proc.kill()
        raise
    finally:
        for side in sides:
            signal_side(side, signal.SIGCONT)
        for pid in world_pids.values():
            os.sched_setaffinity(pid, all_cpus)
    for side, side_procs in procs.items():
        for proc in side_procs:
            try:
                _, err = proc.communicate(timeout=start_up + schedule + 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
            if proc.returncode != 0:
                raise RuntimeError(f"interleaved {side} run failed: {err[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    results = {side: _windowed([w for w in windows if w["side"] == side],
                               read_answers(files[side])) for side in sides}
    return {"rounds": args.rounds, "window_s": args.window, "settle_s": SETTLE, "size": size,
            "pinned": args.pin, "raw_sizes": args.wire_sizes, "logins_ok": report["logins_ok"],
            "timeouts": report["timeouts"],
            "logins_done_after_s": report["ramp_s"], **results,
            "over_router": _compared(results["jgsl"], results["router"]),
            "over_echo": _compared(results["jgsl"], results["echo"]),
            "echo_over_router": _compared(results["echo"], results["router"]),
            "over_chat_echo": _compared(results["jgsl"], results["echo_chat"])}


def _take_turns(sides, signal_side, watched: dict[str, dict[str, int]], rounds: int,
                window: float) -> list[dict]:
    """Run each side in turn (all stopped before) for SETTLE + ``window`` seconds, ``rounds``
    times; each window's span and the CPU seconds of the side's processes in it."""
    windows = []
    for _ in range(rounds):
        for side in sides:
            signal_side(side, signal.SIGCONT)
            time.sleep(SETTLE)
            begun = time.time()
            before = {name: cpu_seconds(pid) for name, pid in watched[side].items()}
            time.sleep(window)
            ended = time.time()
            used = {name: cpu_seconds(pid) - before[name] for name, pid in watched[side].items()}
            signal_side(side, signal.SIGSTOP)
            windows.append({"side": side, "start": begun, "end": ended, "cpu": used})
    return windows


def _compared(jgsl: dict, echo: dict) -> dict:
    """JGSL against one echo: the ratio of the rates over all windows, of each round's
    rates and their median (a phase change of the VM within one round moves only that
    round's), and of the servers' CPU per answer (echo's over JGSL's: the load generators
    left out)."""
    by_round = [round(j / e, 3) if e else None for j, e in zip(
        jgsl["windows_per_s"], echo["windows_per_s"], strict=True)]
    known = [r for r in by_round if r is not None]
    rate = echo["per_s"]
    return {"ratio": round(jgsl["per_s"] / rate, 3) if rate else None,
            "by_round": by_round,
            "median_of_rounds": round(statistics.median(known), 3) if known else None,
            "servers_cpu_ratio": round(echo["servers_cpu_us"] / jgsl["servers_cpu_us"], 3)
            if jgsl["servers_cpu_us"] else None}


def _windowed(windows: list[dict], answers: list[tuple[float, float]]) -> dict:
    """Rate, RTT and CPU of one side over its windows, from its answers' timestamps."""
    seconds = sum(w["end"] - w["start"] for w in windows)
    ordered = sorted(answers)
    times = [when for when, _ in ordered]
    rtts: list[float] = []
    cpu: dict[str, float] = {}
    for w in windows:
        first, last = bisect_left(times, w["start"]), bisect_left(times, w["end"])
        w["answered"] = last - first
        rtts += [rtt for _, rtt in ordered[first:last]]
        for name, spent in w["cpu"].items():
            key = "grid" if name.startswith("grid") else name
            cpu[key] = cpu.get(key, 0.0) + spent
    return {
        "per_s": round(len(rtts) / seconds, 1),
        "rtt_ms": {"p50": _percentile_ms(rtts, 50), "p99": _percentile_ms(rtts, 99)},
        "cpu_cores": {k: round(v / seconds, 3) for k, v in cpu.items()},
        "cpu_us_per_answer": {k: round(v / max(1, len(rtts)) * 1e6, 1) for k, v in cpu.items()},
        "servers_cpu_us": round(sum(v for k, v in cpu.items() if k != "client")
                                / max(1, len(rtts)) * 1e6, 1),
        "windows_per_s": [round(w["answered"] / (w["end"] - w["start"]), 1) for w in windows],
        "windows_cpu_us_per_answer": [round(sum(w["cpu"].values()) / max(1, w["answered"]) * 1e6,
                                            1) for w in windows]}


def _ratio(flat: dict, echo: dict) -> float | None:
    rate = echo["round_trips_per_s"]
    return round(flat["updates_received_per_s"] / rate, 3) if rate else None


def _on_the_wire(payload: float | None) -> int:
    """Bytes of a JGSL update stanza whose protobuf payload has ``payload`` bytes."""
    from jgsl.wire import jgsl_pb2 as pb
    from jgsl.wire.codec import encode_bytes

    head = len(encode_bytes(pb.NormalUpdate(), "grid1.localhost", "user0001@load.localhost/r"))
    return head + 4 * -(-round(payload or 100) // 3)


def limit_run(world: World, xmpp: str, server: str, n: int, args) -> dict:
    """JGSL flat out, then the echo at the same concurrency and stanza size, in one world."""
    # Flat out (FLAT_OUT), one node per user: the same concurrency as the echo senders.
    flat = load_run(world, xmpp, n, FLAT_OUT, args.duration, args.ramp, corners=False,
                    thin=args.thin, stagger=args.stagger)
    size = round(4 / 3 * (flat["bytes_per_update_in"] or 100))  # base64 of the payload
    args.wire_sizes = (_on_the_wire(flat["bytes_per_update_out"]),
                       _on_the_wire(flat["bytes_per_update_in"]))
    echo = echo_run(world, xmpp, n, size, args.duration)
    # For comparison with sessions 1-3, whose echo sent one stanza per sender per 0.1 s
    # tick: at 1000 senders that caps it at 10,000/s, below the router's limit.
    paced = echo_run(world, xmpp, n, size, args.duration, paced=True)
    interleaved = interleaved_run(world, xmpp, n, size, args) if args.rounds else None
    return {"server": server, "users": n, "jgsl_flat_out": flat, "echo": echo,
            "echo_paced": paced, "ratio_jgsl_over_echo": _ratio(flat, echo),
            "ratio_jgsl_over_paced_echo": _ratio(flat, paced), "interleaved": interleaved}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default="embedded,prosody")
    p.add_argument("--users", default="100,500,1000")
    p.add_argument("--intervals", default="1,3")
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--ramp", type=float, default=10.0)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    p.add_argument("--grids", type=int, default=1, help="grid processes (one per core)")
    p.add_argument("--stagger", type=int, default=20,
                   help="jgsl-load --stagger: users ticked in N groups in turn")
    p.add_argument("--thin", action="store_true",
                   help="thin load clients (jgsl-load --thin): same server work, the load "
                        "generator does not decode the other agents")
    p.add_argument("--pairs", type=int, default=1,
                   help="measure the router's limit N times (flat out, then echo, then paced "
                        "echo, in turn): the ratio wanders with this shared machine")
    p.add_argument("--rounds", type=int, default=6,
                   help="interleaved limit: pairs of windows, JGSL then echo (0: none)")
    p.add_argument("--window", type=float, default=4.0,
                   help="interleaved limit: seconds counted per window")
    p.add_argument("--pin", action="store_true",
                   help="interleaved limit: servers on CPU 1, load generators on CPU 0")
    p.add_argument("--limit-only", action="store_true",
                   help="skip the runs at 1 Hz and 3 s; only the router's limit")
    p.add_argument("--out", type=Path, default=RESULTS / "e2e.json")
    args = p.parse_args(argv)
    if args.pin and len(os.sched_getaffinity(0)) < 2:
        p.error("--pin needs two CPUs")
    users = [int(n) for n in args.users.split(",")]
    intervals = [float(i) for i in args.intervals.split(",")]
    if args.smoke:
        users, intervals, args.duration, args.ramp = [4], [1.0], 2.0, 1.0
        args.rounds, args.window = min(args.rounds, 2), 1.0
    results: dict = {"runs": [], "limits": []}
    for server in args.servers.split(","):
        workdir = Path(tempfile.mkdtemp(prefix=f"jgsl-e2e-{server}-"))
        world = World(server, workdir, args.grids)
        try:
            xmpp = world.start()
            for n in [] if args.limit_only else users:
                for interval in intervals:
                    run = load_run(world, xmpp, n, interval, args.duration, args.ramp,
                                   thin=args.thin, stagger=args.stagger)
                    results["runs"].append({"server": server, **run})
                    print(server, json.dumps(run), flush=True)
            for _ in range(args.pairs):
                limit = limit_run(world, xmpp, server, users[-1], args)
                results["limits"].append(limit)
                print(server, "limit", json.dumps(limit), flush=True)
        finally:
            world.stop()
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
