"""Token buckets per (sender, recipient)."""

from jgsl.core.flood import FloodGate


def test_burst_then_rate():
    gate = FloodGate(rate=10, burst=5)
    assert [gate.allow(0, "a", "g") for _ in range(6)] == [True] * 5 + [False]
    assert gate.allow(0.05, "a", "g") is False  # half a token
    assert gate.allow(0.1, "a", "g") is True


def test_pairs_are_independent_and_pruned():
    gate = FloodGate(rate=10, burst=5)
    for _ in range(5):
        gate.allow(0, "a", "g")
    assert gate.allow(0, "a", "h") and gate.allow(0, "b", "g")
    assert gate.pairs == 3
    gate.prune(0.4)
    assert gate.pairs == 3
    gate.prune(0.6)  # every bucket is full again
    assert gate.pairs == 0


def test_an_empty_gate_is_still_a_gate():
    """Truth is not size: ``flood or FloodGate()`` must keep a caller's empty gate."""
    gate = FloodGate(rate=1e9, burst=1e9)
    assert gate.pairs == 0 and bool(gate)
    assert (gate or FloodGate()) is gate
