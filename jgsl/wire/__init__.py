"""The JGSL wire protocol: protobuf messages, their registry, and the stanza codec."""
