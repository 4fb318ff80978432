"""Sans-IO cores: gateway, grid process and nodes, client, emulated users; they take ``now``
and messages and return messages. They import only jgsl.wire and each other
(docs/architecture.md)."""
