"""The benchmarks run (tiny sizes; CI times nothing)."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "bench"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_codec_bench_smoke(tmp_path):
    out = tmp_path / "codec.json"
    result = load("codec").main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["agents"] == 5
    assert 0 < result["moving_bytes_per_agent"] < result["moving_original_bytes_per_agent"]
    assert result["join_snapshot_bytes"] < result["join_original_bytes"]


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_grid_instruction_count_smoke():
    """The valgrind count runs, and more agents in view cost more instructions per update."""
    grid = load("grid")
    few, many = (grid.instructions_per_update(n, 60.0, 1) for n in (2, 12))
    assert 0 < few < many


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_world_bench_smoke(tmp_path):
    """Users log in and update; each part's CPU and the valgrind count come out."""
    out = tmp_path / "world.json"
    result = load("world").main(["--smoke", "--instructions", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["logins_ok"] == 10 and result["updates"] > 10
    assert set(result["cpu_us_per_update"]) == {"load_runner", "grid", "gateway", "codec"}
    assert result["cpu_us_per_update"]["grid"] > 0
    assert result["instructions_per_update"]["count"] > 0


def test_grid_bench_smoke(tmp_path):
    out = tmp_path / "grid.json"
    result = load("grid").main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert {(r["agents"], r["radius"]) for r in result["runs"]} == {
        (5, 30.0), (10, 30.0), (5, None), (10, None)}
    assert all(r["updates"] == r["agents"] * (10 // r["agents"]) and r["cpu_us_per_update"] > 0
               for r in result["runs"])


def test_e2e_bench_smoke(tmp_path):
    """Embedded router and Prosody, 4 users, plus the null-echo limit: every field present."""
    result = load("e2e").main(["--smoke", "--rounds", "1", "--out", str(tmp_path / "e2e.json")])
    assert {r["server"] for r in result["runs"]} == {"embedded", "prosody"}
    for run in result["runs"]:
        assert run["logins_ok"] == 4 and run["updates_received_per_s"] > 0
        assert set(run["cpu_cores"]) == {"server", "gateway", "grid", "client", "stolen",
                                        "grid_each"}
    for limit in result["limits"]:
        assert limit["echo"]["round_trips_per_s"] > 0 and not limit["echo"]["paced"]
        assert limit["echo_paced"]["round_trips_per_s"] > 0 and limit["echo_paced"]["paced"]
        assert limit["ratio_jgsl_over_echo"] > 0 and limit["ratio_jgsl_over_paced_echo"] > 0
        assert limit["interleaved"]["over_echo"]["ratio"] > 0  # (through Prosody too)
        assert limit["interleaved"]["over_router"]["ratio"] > 0


def test_e2e_bench_limit_pairs_smoke(tmp_path):
    """--limit-only --pairs 2: no rate runs, two flat-out/echo pairs in the one world."""
    result = load("e2e").main(["--smoke", "--servers", "embedded", "--limit-only",
                               "--pairs", "2", "--rounds", "0",
                               "--out", str(tmp_path / "e2e.json")])
    assert result["runs"] == []
    assert [limit["server"] for limit in result["limits"]] == ["embedded", "embedded"]
    assert all(limit["jgsl_flat_out"]["updates_received_per_s"] > 0
               and limit["ratio_jgsl_over_echo"] > 0 for limit in result["limits"])


def test_e2e_bench_interleaved_smoke(tmp_path):
    """The interleaved limit: every side answered in each of its windows, and with --pin
    the servers' and load generators' CPU is told apart."""
    result = load("e2e").main(["--smoke", "--servers", "embedded", "--limit-only", "--pin",
                               "--out", str(tmp_path / "e2e.json")])
    interleaved = result["limits"][0]["interleaved"]
    assert interleaved["pinned"] and interleaved["logins_ok"] == 4
    assert set(interleaved["jgsl"]["cpu_cores"]) == {"server", "gateway", "grid", "client"}
    for side in ("echo", "echo_chat"):
        assert set(interleaved[side]["cpu_cores"]) == {"server", "echo", "client"}
    assert set(interleaved["router"]["cpu_cores"]) == {"server", "client"}
    assert all(size > 150 for size in interleaved["raw_sizes"])
    for side in ("jgsl", "router", "echo", "echo_chat"):
        assert len(interleaved[side]["windows_per_s"]) == interleaved["rounds"] == 2
        assert all(rate > 0 for rate in interleaved[side]["windows_per_s"])
        assert interleaved[side]["servers_cpu_us"] > 0
    for compared in (interleaved["over_router"], interleaved["over_echo"],
                     interleaved["over_chat_echo"], interleaved["echo_over_router"]):
        assert compared["ratio"] > 0 and compared["servers_cpu_ratio"] > 0
        assert min(compared["by_round"]) <= compared["median_of_rounds"] \
            <= max(compared["by_round"])


def test_lua_bench_smoke(tmp_path):
    """3 stale scripts reloaded (all or none), OnTick of an empty script and of the demo."""
    out = tmp_path / "lua.json"
    result = load("lua").main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    reload = result["reload"]
    assert reload["scripts"] == 3 and reload["reload_ms_median"] > 0
    assert reload["refused_ms"] > 0 and reload["unchanged_ms"] >= 0
    assert reload["free_old_vms_ms_median"] >= 0
    assert [(t["script"], t["agents"]) for t in result["tick"]] == [
        ("empty", 0), ("AlphaWorld", 0), ("AlphaWorld", 2)]
    assert all(t["cpu_us_per_tick"] >= 0 and t["cpu_us_per_ontick_call"] >= 0
               for t in result["tick"])


def test_router_capacity_bench_smoke(tmp_path):
    """Raw components pipeline stanzas through the embedded router and Prosody: every
    stanza arrives, and rates and CPU per stanza come out for each size and the round trip."""
    out = tmp_path / "router.json"
    result = subprocess.run([sys.executable, str(BENCH / "router.py"), "--smoke",
                             "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    for server in ("embedded", "prosody"):
        rows = report[server]
        assert set(rows) == {"one_way_294B", "one_way_494B", "round_trip_183B_417B"}
        assert all(r["stanzas"] == 400 and r["seconds"] > 0 for r in rows.values())
        assert rows["round_trip_183B_417B"]["round_trips_per_s"] > 0


def test_stream_bench_smoke(tmp_path):
    """The XML stream work both ways: every stanza handled (the bench checks), CPU per
    stanza and GC collections reported for the component and the router."""
    out = tmp_path / "stream.json"
    result = load("stream").main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    for name in ("component", "router"):
        for way in ("generic", "fast"):
            row = result[f"{name}_{way}"]
            assert row["cpu_us_per_stanza"] > 0 and row["gc_collections_per_10k"] >= 0
        assert result[f"{name}_ratio"] > 0


def test_hosts_capacity_bench_smoke(tmp_path):
    """The flat-out load on one host (1 and 2 grids) and on five: every layout answers, no
    update times out, and the model's prediction stands beside the five hosts' rate."""
    from tests.hosts import available

    why = available()
    if why:
        pytest.skip(why)
    out = tmp_path / "hosts.json"
    result = subprocess.run([sys.executable, str(BENCH / "hosts.py"), "--smoke",
                             "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert set(report["runs"]) == {"1 host, 1 grid", "1 host, 2 grids", "5 hosts"}
    for run in report["runs"].values():
        assert run["updates_per_s"] > 0 and run["timeouts"] == 0
        assert set(run["cpu_us_per_update"]) >= {"router", "gateway", "grid1", "load"}
    model = report["model"]
    assert model["predicted"] == min(model["router_bound"], model["grid_bound"],
                                     model["cores_bound"])
    assert model["measured_5_hosts"] == report["runs"]["5 hosts"]["updates_per_s"]
