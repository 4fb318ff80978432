"""JID helpers shared by the cores (plain strings: the cores never parse XML)."""


def bare(jid: str) -> str:
    """The JID without its resource."""
    return jid.split("/", 1)[0]


def agent_name(jid: str, reader: str) -> str:
    """The agent's name as a reader sees it: its node part if both share a domain."""
    node, _, domain = jid.partition("@")
    return node if domain and domain == reader.partition("@")[2] else jid


def agent_jid(name: str, reader: str) -> str:
    """Inverse of L{agent_name}."""
    return name if "@" in name else f"{name}@{reader.partition('@')[2]}"
