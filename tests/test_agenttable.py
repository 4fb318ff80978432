"""The columnar agent table: round trips, string maps and back references, bad tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jgsl.core.reply.agenttable import TableError, TableWriter, read_table, wrap_facing
from jgsl.core.stringmaps import ANIMS, ASSET_FILES, CCS, StringMap, default_maps
from jgsl.core.tracker import EVICTED, ValueTracker
from jgsl.wire import jgsl_pb2 as pb

MAPS = default_maps()
text = st.text(max_size=12)
absolute_row = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(min_size=1, max_size=16),
        "asset_file": st.one_of(st.sampled_from(ASSET_FILES), text),
        "rx": st.integers(-(2**30), 2**30), "y": st.integers(-(2**30), 2**30),
        "rz": st.integers(-(2**30), 2**30), "facing": st.integers(0, 255),
        "ccs": st.one_of(st.sampled_from(CCS), text),
        "anim": st.one_of(st.sampled_from(ANIMS), text),
        "nickname": text, "scaling": st.integers(1, 100_000),
    },
)
delta_row = st.fixed_dictionaries(
    {}, optional={"rx": st.integers(-5000, 5000), "rz": st.integers(-5000, 5000),
                  "facing": st.integers(-128, 127), "anim": text})


@given(rows=st.lists(st.tuples(st.integers(1, 50), st.booleans(), absolute_row, delta_row),
                     max_size=30))
def test_round_trip(rows):
    writer = TableWriter(MAPS)
    expected, slot = [], 0
    for step, delta, absolute, deltas in rows:
        slot += step
        values = deltas if delta else absolute
        writer.add(slot, values, delta)
        expected.append((slot, delta, values))
    encoded = writer.finish().SerializeToString()
    # what a grid node sends (compiled: packed without protobuf) is protobuf's own encoding
    assert writer.encoded() == encoded
    table = pb.AgentTable.FromString(encoded)
    assert [(r.slot, r.delta, r.values) for r in read_table(table, MAPS)] == expected
    assert table.ByteSize() <= writer.size


def test_strings_use_the_map_then_back_references():
    writer = TableWriter(MAPS)
    for slot in range(3):
        writer.add(slot, {"asset_file": "custom/a.x", "anim": ANIMS[3]}, False)
    table = writer.finish()
    assert list(table.asset_ids) == [0, 2, 2] and list(table.asset_text) == ["custom/a.x"]
    assert list(table.anim_ids) == [2 * 4 - 1] * 3 and list(table.anim_text) == []


def test_names_are_front_coded():
    writer = TableWriter(MAPS)
    for slot, name in enumerate(["__guest1", "__guest12", "__guest13", "bob"]):
        writer.add(slot, {"name": name}, False)
    table = writer.finish()
    assert list(table.name_shared) == [0, 8, 8, 0]
    assert table.name_rest == "__guest123bob"


@pytest.mark.parametrize(
    "table, problem",
    [
        (pb.AgentTable(slots=[1], masks=[]), "differ in length"),
        (pb.AgentTable(slots=[1], masks=[1 << 3]), "shorter"),
        (pb.AgentTable(slots=[1], masks=[1 << 2], asset_ids=[2 * 999 - 1]), "string code"),
        (pb.AgentTable(slots=[1], masks=[1 << 2], asset_ids=[4]), "string code"),
        (pb.AgentTable(slots=[1], masks=[1 << 1], name_shared=[3], name_rest_len=[0]),
         "name column"),
        (pb.AgentTable(slots=[1], masks=[1 << 1], name_shared=[0], name_rest_len=[9],
                       name_rest="ab"), "name column"),
        (pb.AgentTable(slots=[1], masks=[1 << 20]), "unknown field bits"),
    ],
)
def test_inconsistent_tables_raise(table, problem):
    with pytest.raises(TableError, match=problem):
        list(read_table(table, MAPS))


def test_facing_wraps():
    assert wrap_facing(250 - 5) == -11 and wrap_facing(5 - 250) == 11
    assert (250 + wrap_facing(5 - 250)) % 256 == 5


def test_original_string_maps():
    assert MAPS["asset_file"].text_of(5) == "character/v3/dummy/dummy.x"
    assert len(CCS) == 10 and CCS[0] == CCS[5] and MAPS["ccs"].id_of(CCS[5]) == 1
    assert len(ANIMS) == 27 and ANIMS[0] == "" and ANIMS[26].endswith("修改物体.x")
    extended = StringMap(ASSET_FILES)
    extended.extend(["character/v4/Can/can01/can01.x"])
    assert extended.id_of("character/v4/Can/can01/can01.x") == 6
    assert extended.text_of(7) is None and extended.text_of(0) is None


def test_value_tracker_history():
    tracker = ValueTracker(size=2)
    assert tracker.at(5) is None and tracker.frame == 0
    assert tracker.push(3, 10) and not tracker.push(4, 10)  # unchanged: not pushed
    assert tracker.push(6, 11) and tracker.push(9, 12)
    assert (tracker.frame, tracker.value) == (9, 12)
    assert tracker.at(9) == 12 and tracker.at(8) == 11 and tracker.at(6) == 11
    assert tracker.at(5) is EVICTED  # the value at frame 3 fell out of the history


@given(st.integers(1, 4), st.lists(st.tuples(st.integers(1, 3), st.integers(0, 3)), max_size=12))
def test_value_tracker_earlier_is_what_at_answers_between_the_newest_two(size, pushes):
    """The grid's row builder reads ``earlier`` instead of searching with ``at``."""
    tracker, frame = ValueTracker(size=size), 0
    for step, value in pushes:
        frame += step
        tracker.push(frame, value)
        if tracker.earlier_frame is not None:
            assert size > 1
            for since in range(tracker.earlier_frame, tracker.frame):
                assert tracker.at(since) == tracker.earlier
        elif len(tracker) > 1:
            raise AssertionError("a history of two or more values has an earlier one")
