"""The interest index: which slots are within a distance, as slots move, leave and grow."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jgsl.core.reply import interest
from jgsl.core.reply.interest import InterestIndex
from jgsl.core.reply.rowloop import COMPILED

position = st.tuples(st.integers(-40000, 80000), st.integers(-40000, 80000))
move = st.tuples(st.integers(0, 300), st.one_of(st.none(), position))


@pytest.mark.parametrize("compiled", [
    False, pytest.param(True, marks=pytest.mark.skipif(not COMPILED, reason="not compiled"))])
@given(moves=st.lists(move, max_size=80), center=position, limit=st.integers(0, 10**10),
       inner=st.floats(0, 1))
def test_within_matches_brute_force(compiled, moves, center, limit, inner):
    """After any sequence of placements and removals (slots past the initial capacity
    included), exactly the placed slots within the limit come back, ascending, each marked
    if it lies beyond the inner limit: from the compiled pass and from numpy alike."""
    index, where = InterestIndex(capacity=4), {}
    for slot, pos in moves:
        index.place(slot, pos)
        if pos is None:
            where.pop(slot, None)
        else:
            where[slot] = pos
    inner *= limit
    distances = {slot: (x - center[0]) ** 2 + (z - center[1]) ** 2
                 for slot, (x, z) in where.items()}
    expected = sorted((slot, d > inner) for slot, d in distances.items() if d <= limit)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(interest, "COMPILED", compiled)
        slots, outer, n = index.within(*center, limit, inner)
    assert list(zip(slots[:n], map(bool, outer[:n]), strict=True)) == expected
