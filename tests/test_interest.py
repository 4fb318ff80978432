"""The interest index: which slots are within a distance, as slots move, leave and grow."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jgsl.core.interest import InterestIndex

position = st.tuples(st.integers(-40000, 80000), st.integers(-40000, 80000))
move = st.tuples(st.integers(0, 300), st.one_of(st.none(), position))


@given(st.lists(move, max_size=80), position, st.integers(0, 10**10))
def test_within_matches_brute_force(moves, center, limit):
    """After any sequence of placements and removals (slots past the initial capacity
    included), exactly the placed slots within the limit come back, ascending."""
    index, where = InterestIndex(capacity=4), {}
    for slot, pos in moves:
        index.place(slot, pos)
        if pos is None:
            where.pop(slot, None)
        else:
            where[slot] = pos
    expected = sorted((slot, (x - center[0]) ** 2 + (z - center[1]) ** 2)
                      for slot, (x, z) in where.items()
                      if (x - center[0]) ** 2 + (z - center[1]) ** 2 <= limit)
    slots, distances = index.within(*center, limit)
    assert list(zip(slots.tolist(), distances.tolist(), strict=True)) == expected
