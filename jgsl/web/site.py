"""The web service of one process: twisted.web in the daemon's reactor (``--web``).

Nothing here is on the hot path: metrics are read when scraped, health when asked.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from prometheus_client.twisted import MetricsResource
from twisted.application.service import Service
from twisted.internet.endpoints import serverFromString
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import File

from jgsl.core.gateway import GatewayCore
from jgsl.core.safetext import Logger
from jgsl.web.health import health
from jgsl.web.metrics import Metrics
from jgsl.xmpp.link import ComponentService
from jgsl.xmpp.router import RouterService

log = Logger(namespace="jgsl.web")
STATIC = Path(__file__).with_name("static")


def _walk(service):
    yield service
    for child in getattr(service, "services", ()):
        yield from _walk(child)


class _Page(Resource):
    """A leaf page that reads the web service's state when asked."""

    isLeaf = True

    def __init__(self, web: WebService) -> None:
        super().__init__()
        self.web = web


class _Health(_Page):
    def render_GET(self, request) -> bytes:
        healthy, body = self.web.health()
        request.setResponseCode(200 if healthy else 503)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(body, indent=1).encode() + b"\n"


class _Index(_Page):
    def render_GET(self, request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return (f"<!doctype html><title>JGSL {self.web.role}</title>"
                "<h1>JGSL</h1><ul><li><a href='/metrics'>/metrics</a>"
                "<li><a href='/healthz'>/healthz</a></ul>").encode()


class WebService(Service):
    """Serves /metrics, /healthz and / for the services under ``top``; with a gateway
    among them, / is the live world map (static page, /map/events feed)."""

    def __init__(self, reactor, endpoint: str, top, role: str) -> None:
        self.reactor = reactor
        self.endpoint = endpoint
        self.top = top
        self.role = role
        self.started = time.monotonic()
        self.metrics = Metrics(self.components, self.stores, self.uptime)
        self.url: str | None = None
        self._port = None
        root = Resource()
        root.putChild(b"metrics", MetricsResource(registry=self.metrics.registry))
        root.putChild(b"healthz", _Health(self))
        self.feed = None
        gateway = next((s.core for s in self.components() if isinstance(s.core, GatewayCore)),
                       None)
        if gateway is None:
            root.putChild(b"", _Index(self))
        else:
            from jgsl.web.livemap import MapFeed

            self.feed = MapFeed(reactor, gateway)
            root.putChild(b"", File(str(STATIC / "map.html"), defaultType="text/html"))
            root.putChild(b"static", File(str(STATIC)))
            events = Resource()
            events.putChild(b"events", self.feed)
            root.putChild(b"map", events)
        self.root = root
        self.site = Site(root)
        self.site.noisy = False
        self.site.log = lambda request: None  # (no access log line per scrape)

    def uptime(self) -> float:
        return time.monotonic() - self.started

    def components(self) -> list[ComponentService]:
        return [s for s in _walk(self.top) if isinstance(s, ComponentService)]

    def stores(self) -> list:
        store = getattr(self.top, "store", None)
        return [store] if store is not None else []

    def router(self) -> RouterService | None:
        return next((s for s in _walk(self.top) if isinstance(s, RouterService)), None)

    def health(self) -> tuple[bool, dict]:
        return health(self.role, self.components(), self.router(), self.uptime())

    def startService(self) -> None:
        super().startService()
        for service in self.components():
            service.handler.timing = self.metrics.timing_for(service.jid)
        d = serverFromString(self.reactor, self.endpoint).listen(self.site)
        d.addCallbacks(self._listening, self._failed)

    def _listening(self, port) -> None:
        self._port = port
        address = port.getHost()
        host = "127.0.0.1" if address.host in ("0.0.0.0", "") else address.host
        host = f"[{host}]" if ":" in host else host
        self.url = f"http://{host}:{address.port}/"
        log.info("web interface at {url} ({pages})", url=self.url,
                 pages="the live world map, /metrics, /healthz" if self.feed
                 else "/metrics, /healthz")

    def _failed(self, failure) -> None:
        # The game goes on without its web pages; the operator reads why.
        log.error("cannot serve the web interface on {endpoint}: {reason}",
                  endpoint=self.endpoint, reason=failure.getErrorMessage())

    def stopService(self):
        super().stopService()
        if self.feed is not None:
            self.feed.stop()
        if self._port is not None:
            return self._port.stopListening()
        return None
