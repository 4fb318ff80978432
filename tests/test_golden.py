"""The golden transcript (tests/data/golden/session.json) stays true: its client stanzas,
replayed byte for byte into today's gateway and grid, bring back exactly the recorded
answers. Any client implementation can replay the same file against itself."""

from __future__ import annotations

import json

from jgsl import protodoc


def test_the_golden_session_replays_byte_for_byte():
    recorded = json.loads(protodoc.GOLDEN.read_text())["stanzas"]
    replayed = protodoc.Session().replay(recorded)
    answers = [(r["from"], r["to"], r["stanza"]) for r in recorded if r["dir"] == "out"]
    got = [(r["from"], r["to"], r["stanza"]) for r in replayed if r["dir"] == "out"]
    assert len(answers) >= 10 and got == answers


def test_the_transcript_has_what_a_client_team_needs():
    recorded = json.loads(protodoc.GOLDEN.read_text())["stanzas"]
    kinds = " ".join(r["stanza"].split(" t='", 1)[1].split("'", 1)[0] for r in recorded)
    for type_id in ("1", "2", "3", "4", "5", "7", "8"):  # ping, login, updates, logout
        assert f"{type_id}" in kinds.split()
    assert any(r.get("lost") for r in recorded)  # a lost reply
    assert any("starts over" in r.get("note", "") for r in recorded)  # a reset
    assert len({r["from"] for r in recorded if r["dir"] == "in"}) >= 2  # several agents


def test_the_generated_docs_and_transcript_are_current():
    assert protodoc.main(["--check"]) == 0
