"""JGSL: Jabber Game Server Lite, a region-sharded game-world server over XMPP."""
