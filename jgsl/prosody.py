"""``jgsl-prosody``: a development Prosody for a JGSL world, from config/prosody/.

    jgsl-prosody --dir /tmp/world --domain localhost --players alice:pw,bob:pw

renders the template with a Component entry (and secret) for the gateway, the grid processes
and the emulated users, makes a self-signed certificate for the domain and components,
starts Prosody in the foreground, creates the player accounts, and runs until interrupted.
The component secret is read from ``--secret-file`` or $JGSL_COMPONENT_SECRET (or made up
and written to DIR/component.secret). Run as root, Prosody runs as the ``prosody`` user.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).resolve().parents[1] / "config" / "prosody" / "prosody.cfg.lua.template"


#: The docstring's first paragraph, for --help (without its reST quotes).
SUMMARY = __doc__.split("\n\n")[0].replace("``", "")

def render_config(base: Path, domain: str, c2s_port: int, component_port: int,
                  components: dict[str, str], interfaces: tuple[str, ...] = ("127.0.0.1",),
                  c2s_rate: str = "256kb/s", tls_port: int | None = None) -> str:
    """The Prosody config for a JGSL world; ``components`` maps component JIDs to secrets.

    ``tls_port`` also offers the component protocol inside direct TLS (none if not given)."""
    for value in (domain, *components, *components.values(), *interfaces, c2s_rate):
        if any(c in value for c in '"\\\n'):
            raise ValueError(f"unsafe character in {value!r}")
    entries = "\n".join(f'Component "{jid}"\n    component_secret = "{secret}"'
                        for jid, secret in components.items())
    return Template(TEMPLATE.read_text()).substitute(
        base=str(base), domain=domain, c2s_port=c2s_port, component_port=component_port,
        interfaces="; ".join(f'"{i}"' for i in interfaces), components=entries,
        c2s_rate=c2s_rate, tls_port=tls_port or "")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def make_certificate(directory: Path, domain: str, names: list[str]) -> Path:
    """A self-signed certificate (and key) for the domain and components; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    alt = ",".join(f"{'IP' if _is_address(n) else 'DNS'}:{n}" for n in [domain, *names])
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-subj", f"/CN={domain}", "-addext", f"subjectAltName={alt}",
         "-keyout", str(directory / f"{domain}.key"), "-out", str(directory / f"{domain}.crt")],
        check=True, capture_output=True)
    return directory / f"{domain}.crt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1",
              wrap: tuple[str, ...] = ()) -> None:
    """Wait until something accepts connections on ``host``:``port``.

    ``wrap`` is a command prefix (e.g. ``ip netns exec NS``) to look from elsewhere than
    this process's network."""
    deadline = time.monotonic() + timeout
    while True:
        if wrap:
            probe = f"import socket; socket.create_connection(({host!r}, {port}), 0.5)"
            ok = subprocess.run([*wrap, sys.executable, "-c", probe],
                                capture_output=True).returncode == 0
        else:
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    ok = True
            except OSError:
                ok = False
        if ok:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {host}:{port}")
        time.sleep(0.05)


class DevProsody:
    """Prosody from Debian in a directory of its own, on loopback ports.

    ``interfaces`` are the addresses it listens on (the first is where it is looked for),
    ``tls_port`` a direct-TLS component port as well, and ``wrap`` a command prefix it is
    started under (e.g. ``ip netns exec NS`` for another network namespace)."""

    def __init__(self, components: dict[str, str], domain: str = "localhost",
                 workdir: Path | None = None, c2s_port: int = 0,
                 component_port: int = 0, tls_port: int | None = None,
                 interfaces: tuple[str, ...] = ("127.0.0.1",),
                 wrap: tuple[str, ...] = ()) -> None:
        self.binary = shutil.which("prosody") or "/usr/bin/prosody"
        self.ctl = shutil.which("prosodyctl") or "/usr/bin/prosodyctl"
        self.components = components
        self.domain = domain
        self.owned = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="jgsl-prosody-"))
        self.config = self.workdir / "prosody.cfg.lua"
        self.c2s_port, self.component_port = c2s_port, component_port
        self.tls_port, self.interfaces, self.wrap = tls_port, interfaces, wrap
        self.proc: subprocess.Popen | None = None
        root = os.geteuid() == 0
        self._user = {"user": "prosody", "group": "prosody", "extra_groups": []} if root else {}

    @property
    def cert_path(self) -> Path:
        return self.workdir / "certs" / f"{self.domain}.crt"

    def start(self) -> DevProsody:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._user:  # Prosody will run as the prosody user: it must reach the directory
            for parent in self.workdir.resolve().parents:
                if not parent.stat().st_mode & 0o001:
                    raise RuntimeError(f"{parent} is not searchable by the prosody user; "
                                       "choose a directory it can reach (e.g. under /tmp)")
        (self.workdir / "data").mkdir(exist_ok=True)
        make_certificate(self.workdir / "certs", self.domain, list(self.components))
        self.c2s_port = self.c2s_port or free_port()
        self.component_port = self.component_port or free_port()
        if self.tls_port == 0:
            self.tls_port = free_port()
        self.config.write_text(render_config(self.workdir, self.domain, self.c2s_port,
                                             self.component_port, self.components,
                                             self.interfaces, tls_port=self.tls_port))
        os.chmod(self.workdir, 0o755)
        if self._user:
            subprocess.run(["chown", "-R", "prosody:prosody", str(self.workdir)], check=True)
        command, user = [self.binary, "-F", "--config", str(self.config)], self._user
        if self.wrap and user:  # the wrap (ip netns exec) runs as root, then Prosody does not
            command = ["setpriv", "--reuid=prosody", "--regid=prosody", "--clear-groups",
                       *command]
            user = {}
        self.proc = subprocess.Popen([*self.wrap, *command], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=self.workdir, **user)
        host = self.interfaces[0]
        for port in (self.c2s_port, self.component_port, self.tls_port):
            if port:
                wait_port(port, host=host, wrap=self.wrap)
        return self

    def register(self, user: str, password: str) -> None:
        """Create (or reset) a player account."""
        subprocess.run([self.ctl, "--config", str(self.config), "register", user, self.domain,
                        password], check=True, capture_output=True, cwd=self.workdir,
                       **self._user)

    def log(self) -> str:
        path = self.workdir / "prosody.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop Prosody by its PID (and remove the directory if we made it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.owned:
            shutil.rmtree(self.workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="jgsl-prosody", description=SUMMARY)
    p.add_argument("--dir", type=Path, default=None, help="directory (default: a new temp one)")
    p.add_argument("--domain", default="localhost")
    p.add_argument("--c2s-port", type=int, default=5222)
    p.add_argument("--component-port", type=int, default=5347)
    p.add_argument("--tls-port", type=int, default=None,
                   help="also offer the component protocol inside direct TLS on this port "
                        "(for components on other hosts; docs/deploy.md)")
    p.add_argument("--interface", default="127.0.0.1",
                   help="address to listen on (default loopback)")
    p.add_argument("--grids", type=int, default=2, help="grid process components grid1..N")
    p.add_argument("--players", default="", help="accounts to create: user:password,...")
    p.add_argument("--secret-file", type=Path, default=None)
    args = p.parse_args(argv)
    if args.secret_file:
        secret = args.secret_file.read_text().strip()
    else:
        secret = os.environ.get("JGSL_COMPONENT_SECRET") or secrets.token_hex(16)
    names = ["gateway", *(f"grid{i}" for i in range(1, args.grids + 1)), "emu", "load"]
    server = DevProsody({f"{n}.{args.domain}": secret for n in names}, args.domain, args.dir,
                        args.c2s_port, args.component_port, tls_port=args.tls_port,
                        interfaces=(args.interface,))
    # Before Prosody starts: a SIGTERM that came between the start and the handler would
    # kill this process with the default action and leave Prosody running, orphaned.
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        print(f"jgsl-prosody: cannot start Prosody: {e}", file=sys.stderr)
        server.stop()
        return 1
    try:  # from here on Prosody runs: whatever happens, stop it
        (server.workdir / "component.secret").write_text(secret + "\n")
        for entry in filter(None, args.players.split(",")):
            user, _, password = entry.partition(":")
            server.register(user, password)
        tls = f" (TLS: {args.interface}:{server.tls_port})" if server.tls_port else ""
        print(f"Prosody for {args.domain}: c2s on {args.interface}:{server.c2s_port}, "
              f"components on {args.interface}:{server.component_port}{tls}; secret in "
              f"{server.workdir / 'component.secret'}, certificate {server.cert_path}. "
              "Ctrl-C stops it.", flush=True)
        while not stop and server.proc.poll() is None:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
