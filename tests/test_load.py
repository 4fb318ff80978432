"""The load runner: a short embedded run in CI, and the recorder's arithmetic."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from jgsl.core.client import ClientSettings, Event, EventKind
from jgsl.core.load import SIZE_EVERY, LoadCore, LoadSettings, Recorder, generated_users
from jgsl.wire import jgsl_pb2 as pb


def test_recorder_counts_and_percentiles():
    rec = Recorder()
    for user in ("a", "b"):
        rec.event(user, Event(EventKind.SIGNED_IN, "grid"))
    rec.event("a", Event(EventKind.SIGNED_IN, "grid"))  # again: a re-login
    rec.event("c", Event(EventKind.LOG, text="the JGSL server at gw refused your login: full"))
    rec.event("a", Event(EventKind.CONNECTION_TIMEOUT, "grid", text="grid node 1 is dead"))
    msg = pb.NormalUpdate(sk="k" * 32, id=1, ct=2)
    for i in range(100):
        rec.metric("sent", i, msg, None)
        rec.metric("received", i, pb.NormalUpdateReply(st=i), (i + 1) / 1000)
    report = rec.report(3, 0.0, 10.0)
    assert (report["logins_ok"], report["relogins"], report["logins_refused"],
            report["timeouts"], report["dead_proxies"]) == (2, 1, 1, 1, 1)
    assert report["updates_sent_per_s"] == 10.0
    assert report["rtt_ms"] == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert report["bytes_per_update_out"] == msg.ByteSize()
    # sized one in SIZE_EVERY, from the first
    sampled = [pb.NormalUpdateReply(st=i).ByteSize() for i in range(0, 100, SIZE_EVERY)]
    assert report["bytes_per_update_in"] == round(sum(sampled) / len(sampled), 1)


def test_users_are_generated_in_the_area_and_started_over_the_ramp():
    settings = LoadSettings(users=10, ramp=5.0, center=(100.0, 200.0), radius=20.0)
    users = generated_users(settings)
    assert len({u.username for u in users}) == 10
    assert all((u.x - 100) ** 2 + (u.z - 200) ** 2 <= 20.0 ** 2 + 1e-6 for u in users)
    # (no gateway answers here: a fixed 20 s timeout keeps the pings' retries out of the count)
    core = LoadCore("load.localhost", "gw.localhost", settings,
                    ClientSettings(adaptive_timeout=False), Recorder())
    pings = [len(core.connected(0.0))]
    for t in (1.0, 2.0, 4.9, 6.0):
        pings.append(sum(isinstance(e.message, pb.Ping) for e in core.tick(t)))
    assert pings == [1, 2, 2, 5, 0] and core.started == 10  # user i at i / 10 * 5 s


@pytest.mark.integration
def test_short_embedded_load_run(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "jgsl.load", "--embedded", "--users", "12", "--duration", "3",
         "--ramp", "1", "--update-interval", "0.5", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["logins_ok"] == 12 and report["logins_refused"] == 0
    assert report["updates_sent"] > 12 * 3 and report["updates_received"] > 0
    assert 0 < report["rtt_ms"]["p50"] <= report["rtt_ms"]["p95"] <= report["rtt_ms"]["p99"]
    assert report["bytes_per_update_in"] > 0 and report["bytes_per_update_out"] > 0
    assert (tmp_path / "rtt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "JGSL load report" in result.stdout
    # the time series: a point a second over the whole run, answers counted in each
    series = report["series"]
    assert len(series) >= 3 and all(b["t"] - a["t"] > 0.5 for a, b in itertools.pairwise(series))
    assert sum(p["answers_per_s"] for p in series) > 0
    assert any(p["p99_ms"] is not None and p["p99_ms"] >= p["p50_ms"] for p in series)
    assert series[-1]["signed_in"] == 12 and sum(p["timeouts"] for p in series) == 0


def test_live_figures_sample_the_last_second():
    recorder = Recorder()
    assert recorder.sample(10.0, 10.0) == {}  # the first sample sets the mark
    for i in range(1, 11):
        recorder.rtts.append((10.0 + i / 20, i / 1000))
    recorder.timeouts = 2
    point = recorder.sample(11.0, 10.0)
    assert point == {"t": 1.0, "answers_per_s": 10.0, "p50_ms": 5.0, "p99_ms": 10.0,
                     "timeouts": 2, "signed_in": 0}
    assert recorder.sample(13.0, 10.0)["answers_per_s"] == 0.0 and len(recorder.series) == 2


def test_each_users_longest_time_without_an_answer_is_kept():
    rec = Recorder()
    clients = {name: type("Client", (), {"metrics": rec.metric})() for name in ("alice", "bob")}
    clients["alice"].metrics("received", 1.0, pb.NormalUpdateReply(), 0.01)  # not watched
    rec.watch_gaps(10.0, clients)
    alice, bob = clients["alice"].metrics, clients["bob"].metrics
    for now in (11.0, 12.0, 19.5, 20.0):
        alice("received", now, pb.NormalUpdateReply(), 0.01)
    bob("received", 10.5, pb.NormalUpdateReply(), 0.01)
    bob("sent", 11.0, pb.NormalUpdate(), None)  # sending is not being answered
    assert rec.longest_gaps(21.0) == {"alice": 7.5, "bob": 10.5}
    assert rec.received == 6  # every answer counted as before
