"""A real N-node Weaviate cluster on one machine, from the binary ``scripts/build-weaviate`` builds.

Each node is its own ``weaviate-server`` process with its own data directory and its own HTTP,
gRPC, gossip (memberlist), data, Raft and Raft-RPC ports, joined by Weaviate's own cluster
settings (``CLUSTER_HOSTNAME``, ``CLUSTER_JOIN``, ``RAFT_JOIN``, ``RAFT_BOOTSTRAP_EXPECT``,
``CLUSTER_IN_LOCALHOST``); no Docker. The ports and node names are recorded in
``DIR/cluster.json`` the first time and reused, because Raft remembers every member's name and
address: a node restarted on other ports would not be recognised.

Used by ``scripts/weaviate-cluster`` (``python -m tests.cluster start|stop|status DIR``), the
cluster and replica tests, and the benchmarks. Nodes are started detached (their own session),
so a test can ``kill -9`` one without touching the others.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
_STATE_FILE = "cluster.json"


# For tests: repairs within seconds instead of Weaviate's production defaults (30 s between
# replica comparisons, 30 s before a fresh write is propagated); the mechanism is the same.
# Memtables are flushed after 1 s, so /v1/nodes (which counts flushed objects) shows each
# node's own copy at once.
FAST_REPAIR = {
    "PERSISTENCE_MEMTABLES_FLUSH_DIRTY_AFTER_SECONDS": "1",
    "ASYNC_REPLICATION_FREQUENCY": "5s",
    "ASYNC_REPLICATION_FREQUENCY_WHILE_PROPAGATING": "1s",
    "ASYNC_REPLICATION_PROPAGATION_DELAY": "1s",
    "ASYNC_REPLICATION_ALIVE_NODES_CHECKING_FREQUENCY": "1s",
}


class ClusterError(Exception):
    """The cluster could not be started or did not become ready (the message says why)."""


@dataclass(frozen=True, slots=True)
class NodePorts:
    """One node's ports; ``data`` is the cluster data port (gossip + 1), ``raft_rpc`` Raft's
    internal RPC (Raft + 1): on localhost, Weaviate derives a peer's ports that way."""

    http: int
    grpc: int
    gossip: int
    data: int
    raft: int
    raft_rpc: int
    profiling: int


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as ``status`` reports it: ``pid`` is None when its process is not running."""

    name: str
    url: str
    grpc_port: int
    pid: int | None
    ready: bool


def weaviate_binary() -> Path:
    """The pinned server binary (built, or reused, by ``scripts/build-weaviate``)."""
    try:
        result = subprocess.run(
            [str(REPO / "scripts" / "build-weaviate")],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as e:
        raise ClusterError(f"scripts/build-weaviate failed: {e.stderr.strip()[-300:]}") from e
    return Path(result.stdout.strip().splitlines()[-1])


class LocalCluster:
    """Starts, kills, restarts and stops the nodes of one cluster directory.

    ``nodes`` is used the first time only; afterwards the recorded layout wins. ``env`` adds
    server settings to every node (e.g. ``ASYNC_REPLICATION_FREQUENCY`` in tests).
    """

    def __init__(
        self,
        directory: Path,
        *,
        nodes: int = 3,
        binary: Path | None = None,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory.resolve()
        self._host = host
        self._binary = binary
        self._env = dict(env or {})
        self._ports = self._load_or_allocate(nodes)
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # --- layout ------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self._ports)

    def url(self, name: str) -> str:
        return f"http://{self._host}:{self._ports[name].http}"

    def ports(self, name: str) -> NodePorts:
        return self._ports[name]

    def pid(self, name: str) -> int | None:
        path = self._pid_file(name)
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):
            return None
        return pid if _is_weaviate(pid) else None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, *, timeout_s: float = 120.0) -> list[NodeInfo]:
        """Start every node that is not running and wait until all report HEALTHY."""
        for name in self.names:
            if self.pid(name) is None:
                self.start_node(name, wait=False)
        self.wait_ready(timeout_s=timeout_s)
        return self.status()

    def start_node(self, name: str, *, wait: bool = True, timeout_s: float = 90.0) -> int:
        """(Re)start one node on its recorded ports and data directory; returns its pid."""
        if (pid := self.pid(name)) is not None:
            return pid
        binary = self._binary or weaviate_binary()
        ports = self._ports[name]
        data = self.directory / name / "data"
        data.mkdir(parents=True, exist_ok=True)
        others = [n for n in self.names if n != name]
        env = dict(os.environ)
        env.update(
            {
                "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "true",
                "PERSISTENCE_DATA_PATH": str(data),
                "DEFAULT_VECTORIZER_MODULE": "none",
                "ENABLE_MODULES": "",
                "AUTOSCHEMA_ENABLED": "false",
                "DISABLE_TELEMETRY": "true",
                "ENABLE_TOKENIZER_KAGOME_KR": "true",
                "QUERY_DEFAULTS_LIMIT": "20",
                "LOG_LEVEL": "warning",
                "GRPC_PORT": str(ports.grpc),
                "GO_PROFILING_PORT": str(ports.profiling),
                "CLUSTER_HOSTNAME": name,
                "CLUSTER_IN_LOCALHOST": "true",
                "CLUSTER_ADVERTISE_ADDR": self._host,
                "CLUSTER_GOSSIP_BIND_PORT": str(ports.gossip),
                "CLUSTER_DATA_BIND_PORT": str(ports.data),
                # Any live member lets a (re)started node find the rest.
                "CLUSTER_JOIN": ",".join(f"{self._host}:{self._ports[n].gossip}" for n in others),
                "RAFT_PORT": str(ports.raft),
                "RAFT_INTERNAL_RPC_PORT": str(ports.raft_rpc),
                "RAFT_JOIN": ",".join(f"{n}:{self._ports[n].raft}" for n in self.names),
                "RAFT_BOOTSTRAP_EXPECT": str(len(self.names)),
            }
        )
        env.update(self._env)
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
        log_path = self.directory / name / "weaviate.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._processes[name] = process
        self._pid_file(name).write_text(str(process.pid))
        if wait:
            self.wait_node_ready(name, timeout_s=timeout_s)
        return process.pid

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (kill -9 by default) to one node and wait until it is gone."""
        pid = self.pid(name)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _is_weaviate(pid):
            self._reap(name)
            time.sleep(0.05)
        if _is_weaviate(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        process = self._processes.pop(name, None)
        if process is not None:  # our child: collect its exit (it may still be exiting)
            with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
                process.wait(timeout=30)
        self._pid_file(name).unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after 30 s)."""
        for name in self.names:
            self.kill(name, signal.SIGTERM)

    # --- readiness ---------------------------------------------------------------------------

    def nodes_view(self, via: str) -> dict[str, dict[str, Any]]:
        """``/v1/nodes?output=verbose`` of node ``via``: name -> node (status, shards...)."""
        response = httpx.get(f"{self.url(via)}/v1/nodes", params={"output": "verbose"}, timeout=5)
        response.raise_for_status()
        return {node["name"]: node for node in response.json().get("nodes", [])}

    def wait_node_ready(self, name: str, *, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive(name)
            if _ready(self.url(name)):
                return
            time.sleep(0.2)
        raise ClusterError(
            f"node {name} ({self.url(name)}) not ready within {timeout_s:.0f}s; "
            f"see {self.directory / name / 'weaviate.log'}"
        )

    def wait_ready(self, *, timeout_s: float = 120.0) -> None:
        """Until every node is ready and every live node sees all nodes HEALTHY."""
        deadline = time.monotonic() + timeout_s
        last = "no node answered"
        while time.monotonic() < deadline:
            for name in self.names:
                self._check_alive(name)
            try:
                if all(_ready(self.url(n)) for n in self.names):
                    views = [self.nodes_view(n) for n in self.names]
                    statuses = [{k: v.get("status") for k, v in view.items()} for view in views]
                    if all(
                        set(s) == set(self.names) and set(s.values()) == {"HEALTHY"}
                        for s in statuses
                    ):
                        return
                    last = f"nodes report {statuses}"
            except httpx.HTTPError as e:
                last = str(e)
            time.sleep(0.3)
        raise ClusterError(f"cluster in {self.directory} not ready within {timeout_s:.0f}s: {last}")

    def status(self) -> list[NodeInfo]:
        result = []
        for name in self.names:
            pid = self.pid(name)
            url = self.url(name)
            ready = pid is not None and _ready(url)
            result.append(NodeInfo(name, url, self._ports[name].grpc, pid, ready))
        return result

    # --- internals ---------------------------------------------------------------------------

    def _pid_file(self, name: str) -> Path:
        return self.directory / name / "pid"

    def _reap(self, name: str) -> None:
        process = self._processes.get(name)
        if process is not None and process.poll() is not None:
            self._processes.pop(name, None)

    def _check_alive(self, name: str) -> None:
        process = self._processes.get(name)
        if process is not None and process.poll() is not None:
            log = self.directory / name / "weaviate.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise ClusterError(
                f"node {name} exited with code {process.returncode}: "
                f"{tail[0][:300] if tail else 'empty log'} (log: {log})"
            )

    def _load_or_allocate(self, nodes: int) -> dict[str, NodePorts]:
        path = self.directory / _STATE_FILE
        with contextlib.suppress(FileNotFoundError, ValueError, TypeError, KeyError):
            recorded = json.loads(path.read_text())
            return {name: NodePorts(**ports) for name, ports in recorded["nodes"].items()}
        if nodes < 1:
            raise ClusterError("a cluster needs at least one node")
        self.directory.mkdir(parents=True, exist_ok=True)
        taken: set[int] = set()
        layout: dict[str, NodePorts] = {}
        for index in range(nodes):
            # Weaviate on localhost finds a peer's data port at gossip + 1 (when its metadata
            # is not known yet) and its Raft RPC port at Raft + 1: one run of four ports.
            run = _free_port_run(taken, 4)
            http, grpc, profiling = (_free_port(taken) for _ in range(3))
            layout[f"node{index}"] = NodePorts(
                http, grpc, run, run + 1, run + 2, run + 3, profiling
            )
            (self.directory / f"node{index}").mkdir(exist_ok=True)
        path.write_text(json.dumps({"nodes": {n: asdict(p) for n, p in layout.items()}}, indent=2))
        return layout


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port


def _free_port_run(taken: set[int], length: int) -> int:
    for _ in range(100):
        start = _free_port(set())
        ports = range(start, start + length)
        if start + length < 65535 and all(p not in taken and _port_is_free(p) for p in ports):
            taken.update(ports)
            return start
    raise ClusterError(f"could not find {length} consecutive free local ports")


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/.well-known/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _is_weaviate(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\x00", 1)[0]
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    if "\nState:\tZ" in state:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return Path(argv0.decode(errors="replace")).name.startswith("weaviate")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/weaviate-cluster",
        description="Start, stop or show a local N-node Weaviate cluster (no Docker).",
    )
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("directory", type=Path, help="where the nodes keep data, logs and pids")
    parser.add_argument("--nodes", type=int, default=3, help="node count (first start only)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for ready")
    args = parser.parse_args(argv)
    if args.action != "start" and not (args.directory / _STATE_FILE).exists():
        print(f"error: no cluster in {args.directory}", file=sys.stderr)
        return 1
    cluster = LocalCluster(args.directory, nodes=args.nodes)
    try:
        if args.action == "start":
            cluster.start(timeout_s=args.timeout)
        elif args.action == "stop":
            cluster.stop()
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for node in cluster.status():
        state = "ready" if node.ready else ("running" if node.pid else "stopped")
        print(f"{node.name}\t{node.url}\tgrpc={node.grpc_port}\tpid={node.pid or '-'}\t{state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
