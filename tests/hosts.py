"""Several network hosts on one machine: network namespaces joined by veth links to a switch.

Each host is a namespace with loopback and one interface, ``eth0``, addressed in
``SUBNET``; its cable goes to a bridge in a namespace of its own (the switch), so no host
shares the machine's own network and no traffic leaves the namespaces made here. Root only.
"""

from __future__ import annotations

import os
import shutil
import subprocess

SUBNET = "10.77.0"


def available() -> str | None:
    """Why hosts cannot be built here, or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's ip is missing"
    probe = f"jgsl-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Hosts:
    """Named hosts (namespaces) with addresses ``SUBNET.1``, ``.2``, … in the order given."""

    def __init__(self, names: list[str]) -> None:
        self.prefix = f"jgsl{os.getpid()}"
        self.switch = f"{self.prefix}-switch"
        self.address = {name: f"{SUBNET}.{i}" for i, name in enumerate(names, 1)}
        self.made: list[str] = []

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def wrap(self, host: str) -> tuple[str, ...]:
        """The command prefix that runs a program on ``host`` (ip netns exec execs it)."""
        return ("ip", "netns", "exec", self.namespace(host))

    def _port(self, host: str) -> str:
        return f"p{list(self.address).index(host) + 1}"

    def build(self) -> Hosts:
        _ip("netns", "add", self.switch)
        self.made.append(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for host, address in self.address.items():
            ns = self.namespace(host)
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name",
                self._port(host), "netns", self.switch)
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", self.switch, "link", "set", self._port(host), "master", "br0")
            _ip("-n", self.switch, "link", "set", self._port(host), "up")
        return self

    def cut(self, host: str) -> None:
        """Pull the host's cable out of the switch: nothing goes in or out, no reset sent."""
        _ip("-n", self.switch, "link", "set", self._port(host), "down")

    def mend(self, host: str) -> None:
        _ip("-n", self.switch, "link", "set", self._port(host), "up")

    def destroy(self) -> None:
        """Delete every namespace made (their links go with them)."""
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made.clear()
