"""``/healthz``: is this process doing its job? For systemd, Kubernetes and load balancers.

Healthy when every component of the process is connected to its XMPP server, a router (if
the process runs one) is listening, and a gateway knows at least one live grid process;
otherwise unhealthy, with the reasons.
"""

from __future__ import annotations

from jgsl.core.gateway import GatewayCore
from jgsl.core.gridprocess import GridProcessCore


def health(role: str, components: list, router, uptime: float) -> tuple[bool, dict]:
    """(healthy, the JSON body) for a process of ``role``."""
    problems: list[str] = []
    checks: dict[str, dict] = {}
    if router is not None:
        listening = router.address is not None
        checks["router"] = {"listening": listening}
        if not listening:
            problems.append("the router is not listening")
    for service in components:
        connected = bool(service.handler.ready)
        check: dict = {"connected": connected}
        if not connected:
            problems.append(f"{service.jid} is not connected to its XMPP server")
        core = service.core
        if isinstance(core, GatewayCore):
            live = sum(1 for grid in core.grids() if not grid.ping)
            check["live_grid_processes"] = live
            if live == 0:
                problems.append(f"{service.jid} knows no live grid process")
        elif isinstance(core, GridProcessCore):
            check["nodes"] = len(core.nodes)
            check["closing"] = core.closing
            if core.closing:
                problems.append(f"{service.jid} is closing")
        checks[service.jid] = check
    if not components and router is None:
        problems.append("this process runs no component")
    healthy = not problems
    body = {"status": "ok" if healthy else "unavailable", "role": role,
            "uptime_s": round(uptime, 1), "checks": checks}
    if problems:
        body["reason"] = "; ".join(problems)
    return healthy, body
