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
    assert len(gate) == 3
    gate.prune(0.4)
    assert len(gate) == 3
    gate.prune(0.6)  # every bucket is full again
    assert len(gate) == 0
