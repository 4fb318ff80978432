"""``twistd jgsl --role router|gateway|grid|emu|world``: options and service construction."""

from __future__ import annotations

import os
from pathlib import Path

from twisted.application.service import IServiceCollection
from twisted.internet.endpoints import clientFromString
from twisted.python import usage
from twisted.python.reflect import namedAny

from jgsl.collector import FULL_INTERVAL, ScheduledCollector
from jgsl.compiled import warn_if_stale
from jgsl.config import ConfigError, WorldConfig, load_config
from jgsl.core.client import Avatar, ClientCore, ClientSettings, Event, EventKind
from jgsl.core.emu import EmuCore, EmuUser
from jgsl.core.gateway import GatewayCore
from jgsl.core.gridprocess import GridProcessCore
from jgsl.core.safetext import Logger
from jgsl.core.seal import MAX_SKEW, Sealer, SealKeys
from jgsl.core.tickets import DEV_TICKET_SECRET
from jgsl.emudb import invisible, load_users
from jgsl.storage.store import EffectRunner, Store
from jgsl.xmpp.link import ComponentService, MessageDump
from jgsl.xmpp.router import RouterService
from jgsl.xmpp.shutdown import GracefulService

ROLES = ("router", "gateway", "grid", "emu", "world", "client")
PASSWORD_ENV = "JGSL_PASSWORD"
CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
LUA_DIR = Path(__file__).resolve().parents[1] / "lua"
DEV_SECRET = "jgsl-dev-secret"
SECRET_ENV = "JGSL_COMPONENT_SECRET"
TICKET_SECRET_ENV = "JGSL_TICKET_SECRET"
ADMIN_SECRET_ENV = "JGSL_ADMIN_SECRET"
REDIS_PASSWORD_ENV = "JGSL_REDIS_PASSWORD"
#: Where ``--role world`` serves its web interface unless told otherwise.
WORLD_WEB = "tcp:8080:interface=127.0.0.1"
log = Logger(namespace="jgsl")


def _positive(value: str) -> float:
    number = float(value)
    if not 0 < number < 1e6:
        raise ValueError(f"{value} is not a positive number of seconds")
    return number


def _seconds_or_zero(value: str) -> float:
    return 0.0 if float(value) == 0 else _positive(value)


class Options(usage.Options):
    synopsis = "--role " + "|".join(ROLES) + " [options]"
    longdesc = (
        "Run a JGSL role. 'world' runs the router, a gateway, a grid process and the "
        "emulated users in one process: the one-command demo. Roles: " + ", ".join(ROLES) + "."
    )
    optParameters = [
        ["role", "r", None, "What this process is: " + ", ".join(ROLES) + "."],
        ["config", "c", str(CONFIG_DIR / "jgsl.config.xml"), "Grid node rules (jgsl.config.xml)."],
        ["emu-users", "u", str(CONFIG_DIR / "EmuUsersDB.xml"), "Emulated users (EmuUsersDB.xml)."],
        ["domain", "d", None,
         "XMPP domain; components are <name>.<domain> (default: the config's, else localhost)."],
        ["listen", None, "tcp:5347:interface=127.0.0.1",
         "Router: strports endpoint where components connect."],
        ["xmpp", None, None,
         "Endpoint string of the router or XMPP server to connect to (default: the component "
         "port tcp:127.0.0.1:5347; for --role client the c2s port tcp:127.0.0.1:5222)."],
        ["port-file", None, None, "Router: write the port it listens on to this file."],
        ["secret-file", None, None,
         f"File holding the component secret (else ${SECRET_ENV}, else a development default)."],
        ["ticket-secret-file", None, None,
         "File holding the login-ticket secret shared by gateways and grids "
         f"(else ${TICKET_SECRET_ENV}, else a development default)."],
        ["admin-secret-file", None, None,
         "File holding the secret admin messages are sealed with "
         f"(else ${ADMIN_SECRET_ENV}, else the ticket secret; docs/security.md)."],
        ["peers", None, None,
         "JID patterns, comma-separated (e.g. 'grid*.example.org,gateway.example.org'): only "
         "these may send server-to-server messages, besides proving the shared secret."],
        ["max-clock-skew", None, MAX_SKEW,
         "Seconds two hosts' clocks may differ: sealed messages and login tickets are judged "
         "with this tolerance (docs/deploy.md).", _positive],
        ["gateway", None, None,
         "Gateway JID(s), comma-separated (default gateway.<domain>): grids register with each "
         "and trust their tickets; clients spread over them (a hash of the user) and move to "
         "the next when theirs does not answer or is bounced."],
        ["redis", None, None,
         "HOST:PORT of a Redis server: gateways share allocation state there, and gateways "
         "and grids persist agents and node logs there (turn AOF on; docs/persistence.md). "
         "Without it a lone gateway keeps allocation in memory, and grid and world "
         "processes persist to --state-file."],
        ["redis-password-file", None, None,
         f"File holding the Redis password (requirepass) (else ${REDIS_PASSWORD_ENV}, else "
         "none): needed once Redis listens on anything but loopback."],
        ["redis-ca-cert", None, None,
         "PEM certificate(s) of the CA that signed Redis's: speak TLS to Redis (its "
         "tls-port) and check its certificate against them and the --redis host name."],
        ["state-file", None, None,
         "Grid/world without --redis: the embedded store's snapshot file "
         "(default jgsl-state/<world|grid name>.json)."],
        ["shutdown-timeout", None, 10.0,
         "Seconds a graceful shutdown may spend persisting before it gives up.", _positive],
        ["admin", None, None,
         "JID(s), comma-separated, whose ADMIN_SHUTDOWN stops this process gracefully "
         "(also /JGSL/Admin jid in the config)."],
        ["write-queue-limit", None, 100_000,
         "Most writes queued while the store is unreachable; beyond it new ones are dropped "
         "with a log line.", int],
        ["jid", None, None, "Client: the player's XMPP account (user@domain/resource)."],
        ["password-file", None, None,
         f"Client: file holding the account's password (else ${PASSWORD_ENV})."],
        ["ca-cert", None, None,
         "Client: PEM certificate to trust for the server (default: the system's roots)."],
        ["world", None, "worlds/MyWorlds/AlphaWorld/", "Client: the world to enter."],
        ["at", None, "20100,36.6,20100", "Client: where to stand, x,y,z."],
        ["role-hook", None, None,
         "Gateway: Python callable module:function(user, world, role) -> role, or None to deny."],
        ["name", None, None, "This component's JID (default gateway|grid1|emu.<domain>)."],
        ["scripts", None, str(LUA_DIR),
         "Game scripts: grids run lua/regions/*.lua, gateways lua/gateway.lua (OnLogin); "
         "'none' turns scripting off. SIGUSR1 or ADMIN_RELOAD reloads them."],
        ["lua-memory", None, 32, "MiB one script VM may hold.", int],
        ["lua-instructions", None, 2_000_000,
         "Lua instructions one hook call may run before it is stopped.", int],
        ["update-interval", None, 3.0, "Seconds between a client's normal updates.", _positive],
        ["request-timeout", None, 20.0,
         "Longest seconds a client waits for an answer before retrying (original: 20, always); "
         "it retries sooner, after a few measured round trips (at least 1 s).", _positive],
        ["report-moves", None, None,
         "Emulated users and client: log another agent's move once it has gone this far "
         "from where it was last logged (client default 1 unit; emu default: moves are not "
         "logged).", _positive],
        ["tick", None, 0.1, "Seconds between core ticks (timers, movement).", _positive],
        ["seed", None, None, "Random seed for emulated users' movement.", int],
        ["web", None, None,
         "strports endpoint for the web interface: /metrics (Prometheus), /healthz, and the "
         "live world map at / (gateway and world). Off by default; --role world defaults to "
         f"{WORLD_WEB}. 'none' turns it off (docs/operations.md)."],
        ["log-format", None, "text",
         "text, or json: one JSON event per line with the structured fields (twisted.logger's "
         "JSON observer), for log collectors."],
        ["full-gc-interval", None, FULL_INTERVAL,
         "Seconds between full garbage collections (start-up objects frozen out of them; "
         "0: Python's own schedule, which paused a busy grid for 40-90 ms at random).",
         _seconds_or_zero],
    ]
    optFlags = [
        ["dump-server-msg", None, "Log every message the gateway and grid send and receive."],
        ["dump-client-msg", None, "Log every message the emulated clients send and receive."],
    ]

    def postOptions(self) -> None:
        role = self["role"]
        if role not in ROLES:
            raise usage.UsageError(f"--role must be one of {', '.join(ROLES)} (got {role!r})")
        if self["log-format"] not in ("text", "json"):
            raise usage.UsageError("--log-format must be text or json")
        if self["web"] is None and role == "world":
            self["web"] = WORLD_WEB
        if self["web"] == "none":
            self["web"] = None
        try:
            self["world-config"] = load_config(self["config"])  # read once, used by every role
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None
        xmpp = self["world-config"].xmpp
        self["domain"] = self["domain"] or xmpp.get("domain") or "localhost"
        domain = self["domain"]
        if not self["xmpp"]:
            self["xmpp"] = ("tcp:127.0.0.1:5222" if role == "client"
                            else xmpp.get("server", "tcp:127.0.0.1:5347"))
        self._config_secret = (xmpp.get("secret_file"), xmpp.get("secret"))
        self["gateways"] = [g.strip() for g in (self["gateway"] or f"gateway.{domain}").split(",")
                            if g.strip()]
        self["gateway"] = self["gateways"][0]
        self["admins"] = frozenset(
            [a.strip() for a in (self["admin"] or "").split(",") if a.strip()]
            + list(self["world-config"].admins))
        if not 1 <= self["write-queue-limit"] <= 10_000_000:
            raise usage.UsageError("--write-queue-limit must be 1..10000000")
        if self["redis"]:
            host, _, port = self["redis"].rpartition(":")
            if not host or not port.isdigit():
                raise usage.UsageError(f"--redis must be HOST:PORT, not {self['redis']!r}")
            self["redis"] = (host.strip("[]"), int(port))
        self["redis-tls"] = None
        if self["redis-ca-cert"]:
            if not self["redis"]:
                raise usage.UsageError("--redis-ca-cert needs --redis")
            from twisted.internet.ssl import Certificate, optionsForClientTLS

            try:
                ca = Certificate.loadPEM(Path(self["redis-ca-cert"]).read_bytes())
            except OSError as e:
                raise usage.UsageError(f"{self['redis-ca-cert']}: {e.strerror}") from None
            except Exception as e:  # noqa: BLE001 - pyOpenSSL's errors say what is wrong
                raise usage.UsageError(f"{self['redis-ca-cert']}: not a PEM certificate "
                                       f"({e})") from None
            self["redis-tls"] = optionsForClientTLS(self["redis"][0], trustRoot=ca)
        if self["role-hook"]:
            try:
                self["role-hook"] = namedAny(self["role-hook"].replace(":", "."))
            except (ImportError, AttributeError, ValueError) as e:
                raise usage.UsageError(f"--role-hook {self['role-hook']}: {e}") from None
            if not callable(self["role-hook"]):
                raise usage.UsageError("--role-hook must name a callable")
        if role == "client":
            self._client_options()
        self["script-library"] = None
        if self["scripts"] != "none":
            if not Path(self["scripts"]).is_dir():
                raise usage.UsageError(f"--scripts {self['scripts']}: not a directory")
            if not 0 < self["lua-memory"] <= 4096 or not 0 < self["lua-instructions"]:
                raise usage.UsageError("--lua-memory and --lua-instructions must be positive")
            from jgsl.lua.regions import ScriptLibrary
            from jgsl.lua.sandbox import Limits

            self["script-library"] = ScriptLibrary(
                Path(self["scripts"]),
                Limits(memory=self["lua-memory"] << 20, instructions=self["lua-instructions"]))
        try:
            if role in ("emu", "world"):
                users, errors = load_users(self["emu-users"])
                for text in errors:
                    log.warn("skipped emulated user: {error}", error=text)
                if not users:
                    raise ConfigError(f"{self['emu-users']}: no usable emulated users")
                for name in invisible(users):
                    log.warn("emulated user {user} has no AssetFile: the others will not see "
                             "it (give its playeragent one)", user=name)
                self["users"] = users
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None
        self["secret"] = self._secret("secret-file", SECRET_ENV, DEV_SECRET, "component")
        self["ticket-secret"] = self._secret("ticket-secret-file", TICKET_SECRET_ENV,
                                             DEV_TICKET_SECRET.decode(), "ticket").encode()
        admin = self._secret("admin-secret-file", ADMIN_SECRET_ENV, "", "admin")
        self["seal-keys"] = SealKeys.from_secrets(self["ticket-secret"], admin.encode() or None)
        self["peers"] = tuple(p.strip() for p in (self["peers"] or "").split(",") if p.strip())
        self["redis-password"] = self._secret("redis-password-file", REDIS_PASSWORD_ENV, "",
                                              "Redis") or None

    def _client_options(self) -> None:
        if not self["jid"] or "@" not in self["jid"]:
            raise usage.UsageError("--role client needs --jid user@domain[/resource]")
        if self["password-file"]:
            try:
                self["password"] = Path(self["password-file"]).read_text().strip()
            except OSError as e:
                raise usage.UsageError(f"{self['password-file']}: {e.strerror}") from None
        else:
            self["password"] = os.environ.get(PASSWORD_ENV, "")
        if not self["password"]:
            raise usage.UsageError(f"--role client needs --password-file or ${PASSWORD_ENV}")
        self["ca"] = None
        if self["ca-cert"]:
            try:
                self["ca"] = Path(self["ca-cert"]).read_bytes()
            except OSError as e:
                raise usage.UsageError(f"{self['ca-cert']}: {e.strerror}") from None
        try:
            self["at"] = tuple(float(v) for v in self["at"].split(","))
            if len(self["at"]) != 3:
                raise ValueError
        except ValueError:
            raise usage.UsageError("--at must be x,y,z") from None

    def _secret(self, option: str, env: str, default: str, what: str) -> str:
        """A secret from its file option, else the environment, else the config (component
        secret only: /JGSL/XMPP secret_file or secret), else the development default."""
        path = self[option]
        secret = None if path else os.environ.get(env)
        if not path and not secret and what == "component":
            path, secret = self._config_secret
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError as e:
                raise usage.UsageError(f"{path}: {e.strerror}") from None
        if secret:
            return secret
        if self["role"] != "world" and default:
            log.warn("using the development {what} secret; set ${env} for a real deployment",
                     what=what, env=env)
        return default


def _log_event(user: str, event: Event) -> None:
    if event.kind is EventKind.USER_COME and event.position:
        x, y, z = event.position
        log.info("{user} sees {other} at ({x:.2f}, {y:.2f}, {z:.2f})", user=user,
                 other=event.jid, x=x, y=y, z=z, event=event.kind.value)
    elif event.kind is EventKind.USER_MOVE and event.position:
        x, y, z = event.position
        log.info("{user} sees {other} move to ({x:.2f}, {y:.2f}, {z:.2f})", user=user,
                 other=event.jid, x=x, y=y, z=z, event=event.kind.value)
    elif event.kind is EventKind.LOG:
        log.info("{user}: {text}", user=user, text=event.text, event=event.kind.value)
    else:
        log.info("{user} {event}: {peer} {text}", user=user, event=event.kind.value,
                 peer=event.jid, text=event.text)


def _redis(options):
    """One txredisapi connection per process, shared by allocation and the store."""
    if options.get("redis-connection") is None:
        import txredisapi

        host, port = options["redis"]
        options["redis-connection"] = txredisapi.lazyConnection(
            host, port, reconnect=True, convertNumbers=False,
            password=options.get("redis-password"),
            ssl_context_factory=options.get("redis-tls") or False)
    return options["redis-connection"]


def _allocation_store(options, reactor):
    """The Redis allocation store several gateways share, or None for a lone gateway (the
    world's gateway is always alone)."""
    if options["redis"] is None or options["role"] != "gateway":
        return None
    from jgsl.storage.allocation import RedisAllocation

    host, port = options["redis"]
    log.info("sharing allocation state through Redis at {host}:{port}", host=host, port=port)
    return RedisAllocation(_redis(options), reactor)


def make_store(reactor, options) -> Store | None:
    """Redis with --redis; else the embedded store for grid and world (a lone gateway's
    own file would never hold what a grid process saved, so it has none)."""
    role = options["role"]
    if options["redis"] is not None:
        from jgsl.storage.redis_store import RedisBackend

        host, port = options["redis"]
        backend = RedisBackend(_redis(options), reactor, name=f"redis {host}:{port}")
    elif role in ("grid", "world"):
        from jgsl.storage.embedded import EmbeddedBackend

        path = options["state-file"] or str(
            Path("jgsl-state") / f"{'world' if role == 'world' else _grid_name(options)}.json")
        backend = EmbeddedBackend(path, reactor)
    else:
        return None
    log.info("persisting to {store}", store=backend.name)
    # the process's name in the store's marks (jgsl.storage.store.EPOCH): unique per process
    name = {"grid": _grid_name(options), "gateway": options["name"] or options["gateway"]}.get(
        role, f"{role}.{options['domain']}")
    return Store(backend, reactor, limit=options["write-queue-limit"], name=name)


def _grid_name(options) -> str:
    return options["name"] or f"grid1.{options['domain']}"


def _component(reactor, options, name: str, endpoint, core, dump_label: str | None,
               store=None, on_admin_shutdown=None, reloader=None):
    dump = MessageDump(dump_label) if dump_label else None
    return ComponentService(reactor, name, options["secret"], endpoint, core,
                            tick_interval=options["tick"], dump=dump, store=store,
                            admins=options["admins"], on_admin_shutdown=on_admin_shutdown,
                            reloader=reloader, sealer=sealer(options))


def sealer(options) -> Sealer:
    """One component's seals: the process's keys, peers and clock tolerance."""
    return Sealer(options["seal-keys"], max_skew=options["max-clock-skew"],
                  peers=options["peers"])


def _login_script(options):
    """lua/gateway.lua as the role hook, when there is one and no --role-hook."""
    library = options["script-library"]
    if library is None or options["role-hook"] or not (library.root / "gateway.lua").is_file():
        return None
    from jgsl.lua.regions import LoginScript
    from jgsl.lua.sandbox import ScriptError

    try:
        return LoginScript(library)
    except ScriptError as e:
        raise usage.UsageError(f"gateway script: {e}") from None


def build_components(reactor, options, endpoint, parent: IServiceCollection,
                     store: Store | None = None, on_admin_shutdown=None) -> None:
    """Add the gateway, grid and emu components the role asks for to ``parent``."""
    role, domain, now = options["role"], options["domain"], reactor.seconds()
    if role == "router":
        return
    server_dump = "server" if options["dump-server-msg"] else None
    world: WorldConfig = options["world-config"]
    maps = world.string_maps()
    if role in ("gateway", "world"):
        name = (options["name"] if role == "gateway" else None) or options["gateway"]
        login = _login_script(options)
        settings = world.gateway_settings(options["role-hook"] or login)
        allocation = _allocation_store(options, reactor)
        core = GatewayCore(name, world.rules, settings, start=now,
                           ticket_secret=options["ticket-secret"],
                           shared=allocation is not None, persist=store is not None)
        service = _component(reactor, options, name, endpoint, core, server_dump,
                             store=EffectRunner(allocation, store),
                             on_admin_shutdown=on_admin_shutdown,
                             reloader=login and login.reload)
        service.setServiceParent(parent)
        if store is not None:
            store.on_lost.append(service.handler.republish)
    if role in ("grid", "world"):
        name = (options["name"] if role == "grid" else None) or f"grid1.{domain}"
        settings = world.grid_settings(max_clock_skew=options["max-clock-skew"])
        core = GridProcessCore(name, options["gateways"], settings, start=now,
                               trusted=world.trusted,
                               maps=maps, ticket_secret=options["ticket-secret"],
                               persist=store is not None,
                               scripts=options["script-library"], rules=world.rules)
        service = _component(reactor, options, name, endpoint, core, server_dump,
                             store=EffectRunner(None, store),
                             on_admin_shutdown=on_admin_shutdown)
        service.setServiceParent(parent)
        if store is not None:
            store.on_lost.append(service.handler.republish)
    if role in ("emu", "world"):
        name = (options["name"] if role == "emu" else None) or f"emu.{domain}"
        users: list[EmuUser] = options["users"]
        settings = ClientSettings(update_interval=options["update-interval"],
                                  request_timeout=options["request-timeout"],
                                  report_moves=options["report-moves"])
        core = EmuCore(name, users, options["gateways"], settings, seed=options["seed"],
                       on_event=_log_event, maps=maps)
        log.info("{count} emulated users from {path}", count=len(users),
                 path=options["emu-users"])
        client_dump = "client" if options["dump-client-msg"] else None
        _component(reactor, options, name, endpoint, core, client_dump).setServiceParent(parent)
    if role == "client":
        _player(reactor, options, endpoint, maps).setServiceParent(parent)


def _player(reactor, options, endpoint, maps) -> ComponentService:
    """One real player over c2s: signs in with SASL after STARTTLS and walks the world."""
    from jgsl.xmpp.player import PlayerCore, player_factory

    account = options["jid"]
    x, y, z = options["at"]
    core = ClientCore(account.split("/")[0], options["gateways"], options["world"],
                      Avatar(x=x, y=y, z=z, asset_file="character/v3/dummy/dummy.x"),
                      ClientSettings(update_interval=options["update-interval"],
                                     request_timeout=options["request-timeout"],
                                     report_moves=options["report-moves"] or 1.0),
                      on_event=lambda event: _log_event(account, event), maps=maps)
    player = PlayerCore(core)
    factory = player_factory(account, options["password"], options["ca"])
    dump = MessageDump("client") if options["dump-client-msg"] else None
    return ComponentService(reactor, account, "", endpoint, player,
                            tick_interval=options["tick"], dump=dump, factory=factory)


def makeService(options: Options, reactor=None) -> GracefulService:
    warn_if_stale()
    signals = reactor is None  # the real daemon: a second SIGTERM forces the stop
    if reactor is None:
        from twisted.internet import reactor
    store = make_store(reactor, options) if options["role"] != "router" else None
    if store is not None and options["redis"] is not None:
        reactor.callWhenRunning(store.watch)  # durability warnings; marks to notice a loss
    top = GracefulService(reactor, store, timeout=options["shutdown-timeout"], signals=signals)
    role = options["role"]
    if role in ("router", "world"):
        router = RouterService(reactor, options["listen"], options["secret"],
                               options["port-file"])
        router.setServiceParent(top)
    if role == "world":
        def endpoint():
            if router.address is None:
                return None
            host, port = router.address
            host = "127.0.0.1" if host in ("0.0.0.0", "") else host
            return clientFromString(reactor, f"tcp:{host.replace(':', chr(92) + ':')}:{port}")
    else:
        def endpoint():
            return clientFromString(reactor, options["xmpp"])
    build_components(reactor, options, endpoint, top, store, top.request_shutdown)
    if options["web"]:
        from jgsl.web.site import WebService

        WebService(reactor, options["web"], top, role).setServiceParent(top)
    if options["log-format"] == "json":
        import sys

        from twisted.logger import jsonFileLogObserver

        # twistd asks the application for a log observer after makeService (AppLogger):
        # the top service hands this one to the application it is added to.
        top.log_observer = jsonFileLogObserver(sys.stdout, recordSeparator="")
    if options["full-gc-interval"]:
        ScheduledCollector(reactor, options["full-gc-interval"]).setServiceParent(top)
    if signals:
        reactor.callWhenRunning(_reload_on_sigusr1, reactor, top)
    return top


def _reload_on_sigusr1(reactor, top) -> None:
    """``kill -USR1 <pid>`` reloads the changed scripts of every component (all or none)."""
    import signal

    def reload_all() -> None:
        for service in top:
            handler = getattr(service, "handler", None)
            if handler is not None:
                handler.reload()

    signal.signal(signal.SIGUSR1, lambda signum, frame: reactor.callFromThread(reload_all))
