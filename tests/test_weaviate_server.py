"""The embedded Weaviate shared by every process of one data directory.

Each test uses its own data directory under ``tmp_path`` (never the session's shared server)
and stops whatever it started. Which processes serve a data directory is read from ``/proc``:
a Weaviate serving a directory keeps files under it open, so the tests count servers without
relying on the product's own bookkeeping.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from retrieval.weaviate_server import EmbeddedWeaviate, ServerAddress
from supportbot.settings import WEAVIATE_VERSION, Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
BINARY_PATH = Settings(_env_file=None).weaviate_binary_path  # type: ignore[call-arg]
STARTUP_TIMEOUT_S = 120.0

# Started by the concurrency test: builds the server handle, waits for "go" on stdin so that
# both processes call ensure_running() at the same moment, then prints the address it got.
_STARTER = """
import json, sys
from pathlib import Path
from retrieval.weaviate_server import EmbeddedWeaviate
server = EmbeddedWeaviate(
    Path(sys.argv[1]), binary_path=Path(sys.argv[2]), version=sys.argv[3],
    startup_timeout_s=float(sys.argv[4]),
)
print("ready", flush=True)
sys.stdin.readline()
address = server.ensure_running()
print(json.dumps({"http_port": address.http_port, "grpc_port": address.grpc_port}), flush=True)
"""


def make_server(data_dir: Path) -> EmbeddedWeaviate:
    return EmbeddedWeaviate(
        data_dir,
        binary_path=BINARY_PATH,
        version=WEAVIATE_VERSION,
        startup_timeout_s=STARTUP_TIMEOUT_S,
    )


def serving_pids(data_dir: Path) -> set[int]:
    """Live Weaviate processes (running the Weaviate binary) with files under ``data_dir`` open."""
    binaries = str(BINARY_PATH.resolve())
    root = str(data_dir.resolve())
    found: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if not os.readlink(proc / "exe").startswith(binaries + os.sep):
                continue
            if "\nState:\tZ" in (proc / "status").read_text():
                continue  # a zombie serves nothing
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue  # gone meanwhile, or not ours to look at
        targets = []
        for fd in fds:  # a file closed between the listing and the read is skipped, not the process
            try:
                targets.append(os.readlink(fd))
            except OSError:
                continue
        if any(t == root or t.startswith(root + os.sep) for t in targets):
            found.add(int(proc.name))
    return found


def answers(address: ServerAddress) -> bool:
    url = f"http://{address.host}:{address.http_port}/v1/.well-known/ready"
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kill_and_reap(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with suppress(ChildProcessError):
        os.waitpid(pid, 0)  # our child when this process started it: no zombie left behind


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh data directory; any Weaviate still serving it at the end is stopped."""
    path = tmp_path / "weaviate"
    yield path
    if path.exists():
        make_server(path).stop()
    for pid in serving_pids(path):
        kill_and_reap(pid)


def test_two_processes_starting_at_once_share_one_server(data_dir: Path) -> None:
    command = [sys.executable, "-c", _STARTER, str(data_dir), str(BINARY_PATH)]
    command += [WEAVIATE_VERSION, str(STARTUP_TIMEOUT_S)]
    starters = [
        subprocess.Popen(
            command,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for starter in starters:
            assert starter.stdout is not None and starter.stdout.readline() == "ready\n"
        for starter in starters:  # both are past their imports: release them together
            assert starter.stdin is not None
            starter.stdin.write("go\n")
            starter.stdin.flush()
        outputs = [starter.communicate(timeout=STARTUP_TIMEOUT_S + 60) for starter in starters]
    finally:
        for starter in starters:
            if starter.poll() is None:
                starter.kill()
                starter.wait()

    for starter, (_, stderr) in zip(starters, outputs, strict=True):
        assert starter.returncode == 0, stderr
    ports = [json.loads(stdout)["http_port"] for stdout, _ in outputs]
    assert ports[0] == ports[1]
    assert len(serving_pids(data_dir)) == 1

    # A third caller, in this process, finds the same server rather than starting one.
    address = make_server(data_dir).ensure_running()
    assert address.http_port == ports[0]
    assert answers(address)
    assert len(serving_pids(data_dir)) == 1


def test_a_killed_server_is_replaced(data_dir: Path) -> None:
    server = make_server(data_dir)
    server.ensure_running()
    (old_pid,) = serving_pids(data_dir)

    kill_and_reap(old_pid)  # a crash: the record still names the dead process
    assert server.running_address() is None

    second = server.ensure_running()
    assert answers(second)
    new_pids = serving_pids(data_dir)
    assert len(new_pids) == 1 and old_pid not in new_pids


# A process that is not Weaviate: it says "ready" once running, then waits for stdin to close.
_IDLE = "import sys; print('ready', flush=True); sys.stdin.read()"


@pytest.mark.parametrize(
    "log_viewer",
    [
        pytest.param(False, id="unrelated-process"),
        pytest.param(
            True,
            id="process-mentioning-weaviate",
        ),
    ],
)
def test_a_record_naming_a_live_non_weaviate_process_is_not_trusted(
    data_dir: Path, log_viewer: bool
) -> None:
    data_dir.mkdir(parents=True)
    log = data_dir / "weaviate.log"
    log.touch()
    # A live process that is not Weaviate, as when a reboot recycled the recorded pid; with
    # ``log_viewer`` its command line names the server's log, like `tail -f .../weaviate.log`.
    # (The test's own pid would do too, but when pytest runs this very file its command line
    # contains 'weaviate', and the bug above would SIGKILL the test run itself.)
    command = [sys.executable, "-c", _IDLE, *([str(log)] if log_viewer else [])]
    helper = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert helper.stdout is not None and helper.stdout.readline() == "ready\n"
        free_port = unused_port()
        record = {
            "pid": helper.pid,
            "http_port": free_port,
            "grpc_port": free_port,
            "version": WEAVIATE_VERSION,
            "binary": str(BINARY_PATH),
        }
        (data_dir / "server.json").write_text(json.dumps(record))
        server = make_server(data_dir)
        assert server.running_address() is None

        address = server.ensure_running()

        assert answers(address)
        pids = serving_pids(data_dir)
        assert len(pids) == 1 and helper.pid not in pids
        assert helper.poll() is None, "ensure_running() killed an unrelated process"
    finally:
        helper.kill()
        helper.communicate()


def test_stop_stops_the_server(data_dir: Path) -> None:
    server = make_server(data_dir)
    address = server.ensure_running()
    assert server.running_address() == address
    assert serving_pids(data_dir)

    assert server.stop() is True

    assert server.running_address() is None
    assert not answers(address)
    assert serving_pids(data_dir) == set()
    assert server.stop() is False  # nothing left to stop
