"""Storage behind one interface: what several processes share (Redis) or one keeps (memory)."""
