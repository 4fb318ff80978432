"""HTTP for operators: /metrics, /healthz and the live world map, served by twisted.web in
the daemon's own reactor (``--web``)."""
