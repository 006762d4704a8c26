"""A Weaviate server shared by every ``supportbot`` process that uses the same data directory.

weaviate-client's embedded mode starts Weaviate as a child of one Python process and stops it
when that process exits, so a bot, an ingest run and a search could not share it. Here the
client's embedded mode is still what finds the binary (and, on a machine with internet,
downloads the official release), but the server is started detached, its pid and ports are
recorded in the data directory, and every later process connects to it. A record whose process
is gone or does not answer is stale (a crash, a reboot) and is replaced under a file lock, so
two processes starting at once never start two servers on one data directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from filelock import FileLock, Timeout
from weaviate.embedded import EmbeddedOptions, EmbeddedV4

from retrieval.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

_STATE_FILE = "server.json"
_PORTS_FILE = "ports.json"
_LOCK_FILE = "server.lock"
_LOG_FILE = "weaviate.log"
# A fixed node name: Raft keeps it in the data directory, so it must not change between starts.
_NODE_NAME = "supportbot-embedded"


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """Where a running Weaviate answers, and which process it is.

    ``pid`` tells a server restarted on the same ports from the one before it, so a client of
    the old one (whose gRPC channel may be stuck in back-off) is replaced.
    """

    host: str
    http_port: int
    grpc_port: int
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class _Ports:
    http: int
    grpc: int
    gossip: int
    data: int
    raft: int
    raft_rpc: int
    profiling: int


@dataclass(frozen=True, slots=True)
class _ServerRecord:
    pid: int
    http_port: int
    grpc_port: int
    version: str
    binary: str


class EmbeddedWeaviate:
    """Starts, finds, replaces and stops the shared Weaviate of one data directory.

    ``ensure_running()`` is safe to call from many processes at once; it returns the address
    of a ready server, starting one only when no healthy one is recorded.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        binary_path: Path,
        version: str,
        startup_timeout_s: float = 60.0,
        host: str = "127.0.0.1",
    ) -> None:
        self._dir = data_dir.resolve()
        self._binary_path = binary_path
        self._version = version
        self._startup_timeout_s = startup_timeout_s
        self._host = host

    @property
    def log_path(self) -> Path:
        return self._dir / _LOG_FILE

    def ensure_running(self) -> ServerAddress:
        """Return the address of this data directory's server, starting it if needed."""
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the knowledge: owner only
        lock = FileLock(str(self._dir / _LOCK_FILE))
        try:
            with lock.acquire(timeout=self._startup_timeout_s + 30):
                record = self._read_record()
                if record is not None:
                    if self._is_healthy(record):
                        return self._address(record)
                    logger.warning(
                        "replacing a stale Weaviate (pid %s) left in %s", record.pid, self._dir
                    )
                    self._terminate(record.pid)
                    (self._dir / _STATE_FILE).unlink(missing_ok=True)
                return self._address(self._start())
        except Timeout as e:
            raise StoreUnavailableError(
                f"another process holds {self._dir / _LOCK_FILE} while starting Weaviate; "
                "wait for it, or remove the lock file if no supportbot process is running"
            ) from e

    def running_address(self) -> ServerAddress | None:
        """The address of a healthy recorded server, without starting anything."""
        record = self._read_record()
        if record is not None and self._is_healthy(record):
            return self._address(record)
        return None

    def stop(self) -> bool:
        """Stop the recorded server; True when one was running."""
        lock = FileLock(str(self._dir / _LOCK_FILE))
        with lock.acquire(timeout=30):
            record = self._read_record()
            if record is None:
                return False
            was_alive = _pid_is_weaviate(record.pid)
            self._terminate(record.pid)
            (self._dir / _STATE_FILE).unlink(missing_ok=True)
            return was_alive

    # --- internals -----------------------------------------------------------------------------

    def _address(self, record: _ServerRecord) -> ServerAddress:
        return ServerAddress(self._host, record.http_port, record.grpc_port, record.pid)

    def _read_record(self) -> _ServerRecord | None:
        path = self._dir / _STATE_FILE
        try:
            return _ServerRecord(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            logger.warning("ignoring an unreadable %s", path)
            return None

    def _is_healthy(self, record: _ServerRecord) -> bool:
        if record.version != self._version or not _pid_is_weaviate(record.pid):
            return False
        return _is_ready(self._host, record.http_port, timeout_s=2.0)

    def _binary(self) -> Path:
        options = EmbeddedOptions(
            binary_path=str(self._binary_path),
            persistence_data_path=str(self._dir / "data"),
            version=self._version,
        )
        embedded = EmbeddedV4(options)
        try:
            embedded.ensure_weaviate_binary_exists()
        except OSError as e:
            raise StoreUnavailableError(
                f"no Weaviate {self._version} binary in {self._binary_path} and it could not be "
                f"downloaded ({e}); run scripts/build-weaviate or set WEAVIATE_URL"
            ) from e
        return Path(embedded._weaviate_binary_path)

    def _ports(self) -> _Ports:
        """Ports chosen once per data directory and kept: Raft remembers its own address."""
        path = self._dir / _PORTS_FILE
        with contextlib.suppress(FileNotFoundError, ValueError, TypeError):
            ports = _Ports(**json.loads(path.read_text()))
            if all(_port_is_free(self._host, p) for p in asdict(ports).values()):
                return ports
            logger.warning("ports in %s are taken by another program; choosing new ones", path)
        http, grpc, profiling = _free_port(), _free_port(), _free_port()
        gossip = _free_port_run(4)
        ports = _Ports(http, grpc, gossip, gossip + 1, gossip + 2, gossip + 3, profiling)
        path.write_text(json.dumps(asdict(ports)))
        return ports

    def _start(self) -> _ServerRecord:
        binary = self._binary()
        ports = self._ports()
        data_path = self._dir / "data"
        data_path.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "true",
                "PERSISTENCE_DATA_PATH": str(data_path),
                "DEFAULT_VECTORIZER_MODULE": "none",
                "ENABLE_MODULES": "",
                "AUTOSCHEMA_ENABLED": "false",
                "DISABLE_TELEMETRY": "true",
                "ENABLE_TOKENIZER_KAGOME_KR": "true",
                "QUERY_DEFAULTS_LIMIT": "20",
                "LOG_LEVEL": "warning",
                "GRPC_PORT": str(ports.grpc),
                # Weaviate binds a debug listener on every interface (:6060 unless
                # GO_PROFILING_PORT says otherwise); the embedded server needs none.
                "GO_PROFILING_DISABLE": "true",
                "CLUSTER_HOSTNAME": _NODE_NAME,
                "CLUSTER_IN_LOCALHOST": "true",
                "CLUSTER_ADVERTISE_ADDR": self._host,
                "CLUSTER_GOSSIP_BIND_PORT": str(ports.gossip),
                "CLUSTER_DATA_BIND_PORT": str(ports.data),
                "RAFT_PORT": str(ports.raft),
                "RAFT_INTERNAL_RPC_PORT": str(ports.raft_rpc),
                "RAFT_JOIN": f"{_NODE_NAME}:{ports.raft}",
                "RAFT_BOOTSTRAP_EXPECT": "1",
            }
        )
        command = [
            str(binary),
            "--host",
            self._host,
            "--port",
            str(ports.http),
            "--scheme",
            "http",
            "--read-timeout=600s",
            "--write-timeout=600s",
        ]
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this process and ignores its Ctrl-C
            )
        record = _ServerRecord(process.pid, ports.http, ports.grpc, self._version, str(binary))
        # Recorded before it is ready: if this process dies while waiting, the next one finds the
        # half-started server (alive, not ready), replaces it, and no orphan is left running.
        (self._dir / _STATE_FILE).write_text(json.dumps(asdict(record)))
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                (self._dir / _STATE_FILE).unlink(missing_ok=True)
                raise StoreUnavailableError(
                    f"Weaviate exited with code {process.returncode} while starting: "
                    f"{_last_line(self.log_path)} (full log: {self.log_path})"
                )
            if _is_ready(self._host, ports.http, timeout_s=1.0):
                # Deliberately left running past this process: mark the handle as settled so
                # its finaliser does not warn about a child it was never meant to wait for.
                process.returncode = 0
                logger.info("started Weaviate pid %s on port %s", process.pid, ports.http)
                return record
            time.sleep(0.2)
        self._terminate(process.pid)
        (self._dir / _STATE_FILE).unlink(missing_ok=True)
        raise StoreUnavailableError(
            f"Weaviate did not become ready within {self._startup_timeout_s:.0f}s "
            f"(log: {self.log_path}); raise WEAVIATE_STARTUP_TIMEOUT_S or check the log"
        )

    @staticmethod
    def _terminate(pid: int) -> None:
        if not _pid_is_weaviate(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _pid_is_weaviate(pid):
            _reap(pid)
            time.sleep(0.1)
        if _pid_is_weaviate(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _reap(pid)


def _reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie that looks alive."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _pid_is_weaviate(pid: int) -> bool:
    """True when ``pid`` is a live Weaviate server.

    A bare pid check would trust a recycled pid, and a substring check would trust any process
    that merely mentions Weaviate (``tail -f weaviate.log``): the program itself must be it.
    """
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\x00", 1)[0]
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    if "\nState:\tZ" in status:
        return False
    return Path(argv0.decode(errors="replace")).name.startswith("weaviate")


def _is_ready(host: str, port: int, *, timeout_s: float) -> bool:
    try:
        response = httpx.get(f"http://{host}:{port}/v1/.well-known/ready", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_port_run(length: int) -> int:
    """First port of ``length`` consecutive free ports (Weaviate wants data = gossip + 1)."""
    for _ in range(50):
        start = _free_port()
        if start + length < 65535 and all(
            _port_is_free("127.0.0.1", p) for p in range(start, start + length)
        ):
            return start
    raise StoreUnavailableError("could not find free local ports for Weaviate")


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "empty log"
