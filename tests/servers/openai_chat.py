"""A local, dependency-free server that speaks OpenAI's Chat Completions wire protocol.

Why this exists: the product's tests and benchmarks must never reach OpenAI (no network, no
cost, no flakiness), yet mocking the ``openai`` package would hide exactly the bugs we care
about -- wrong ``base_url``, missing API key, broken streaming, bad retry/timeout settings.
So instead of a mock we run a real HTTP server on ``127.0.0.1`` and point the real ``openai``
client (and LangChain's ``ChatOpenAI``, which wraps it) at it through ``base_url``.

Supported wire surface (enough for the client libraries we use, nothing more):

* ``POST /v1/chat/completions`` -- a ``chat.completion`` object, or, with ``"stream": true``,
  Server-Sent Events of ``chat.completion.chunk`` objects: a first chunk carrying
  ``delta.role``, one chunk per word of content, a final chunk with ``finish_reason``, an
  optional usage chunk (``stream_options.include_usage``), then ``data: [DONE]``.
* ``GET /v1/models`` and ``GET /v1/models/{id}``.
* Anything else: 404 (405 for a known path with the wrong method) in OpenAI's error shape
  ``{"error": {"message", "type", "param", "code"}}``.
* Every request without ``Authorization: Bearer <key>`` gets 401 in the same shape, so tests
  notice when the application forgets to pass its key.

Replies come from a pluggable ``responder(messages) -> str``. The default,
:func:`default_responder`, is deterministic and made for retrieval tests: it looks for numbered
context excerpts (the product's JSON ``<context-…>`` data block, or lines starting with ``[1]``,
``[2]``, ... in any message) and answers ``"Based on the documentation: <first sentence of
excerpt 1> [1]"``; without them it answers ``"No context provided."``. :class:`GullibleModel`
is a stand-in for a model that obeys injected instructions whenever it sees them outside the
data blocks (prompt-injection tests).

Every request is recorded (:attr:`OpenAIChatSimulator.requests`), and faults can be injected at
runtime from any thread (:meth:`~OpenAIChatSimulator.fail_next`,
:attr:`~OpenAIChatSimulator.latency`, :meth:`~OpenAIChatSimulator.hang_next`) to exercise the
application's retry, back-off and timeout handling.

Usage in a test::

    with OpenAIChatSimulator() as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="test-key", max_retries=0)
        ...
        assert sim.chat_requests()[0]["model"] == "gpt-4o-mini"

From the command line (serves until Ctrl-C)::

    python -m tests.servers.openai_chat --port 8099 --latency 0.2
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import re
import signal
import socket
import sys
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_MODEL",
    "OBEYED",
    "FakeOpenAIServer",
    "GullibleModel",
    "OpenAIChatSimulator",
    "RecordedRequest",
    "Responder",
    "count_tokens",
    "data_blocks",
    "default_responder",
    "fold_text",
    "outside_data",
]

Responder = Callable[[list[dict[str, Any]]], str]
"""Turns the request's ``messages`` into the assistant's reply text."""

DEFAULT_MODEL = "sim-gpt"
CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"

# A numbered context block starts at a line like "[1] text" (leading spaces allowed).
_BLOCK_START = re.compile(r"^\s*\[(\d+)\]\s*(.*)$")
# The first sentence ends at ., ! or ? followed by whitespace or the end of the text.
_FIRST_SENTENCE = re.compile(r"^(.+?[.!?])(?=\s|$)", re.DOTALL)
# Streaming splits content into word-sized pieces, keeping the whitespace so that the
# concatenated deltas equal the non-streaming content exactly.
_STREAM_PIECE = re.compile(r"\s*\S+\s*|\s+")


# --------------------------------------------------------------------------- responders


def message_text(message: Mapping[str, Any]) -> str:
    """Return the plain text of one chat message.

    ``content`` may be a string, ``None`` (assistant tool calls) or a list of typed parts
    (multimodal messages); only the text parts matter to the simulator.
    """
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        ]
        return "\n".join(texts)
    return ""


# A data block of the product's prompts: "<context-9f2c…>" line, JSON, "</context-9f2c…>" line.
_DATA_BLOCK = re.compile(
    r"^<(?P<tag>[a-z]+-[0-9a-f]+)>\n(?P<body>.*?)\n</(?P=tag)>$", re.MULTILINE | re.DOTALL
)


def data_blocks(text: str) -> list[tuple[str, Any]]:
    """The delimited JSON data blocks of a message, as ``(tag, parsed JSON)`` in order.

    Blocks whose body is not valid JSON are left out: a real model would not read them as
    the structured data the product promises either.
    """
    found = []
    for match in _DATA_BLOCK.finditer(text):
        try:
            found.append((match.group("tag"), json.loads(match.group("body"))))
        except json.JSONDecodeError:
            continue
    return found


def _json_excerpts(messages: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Excerpts ``{"n", "text", ...}`` of ``<context-…>`` JSON blocks, by number."""
    excerpts: dict[int, str] = {}
    for message in messages:
        for tag, data in data_blocks(message_text(message)):
            if not tag.startswith("context-") or not isinstance(data, list):
                continue
            for item in data:
                if isinstance(item, Mapping) and isinstance(item.get("n"), int):
                    excerpts.setdefault(item["n"], " ".join(str(item.get("text", "")).split()))
    return excerpts


def _numbered_blocks(messages: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Collect the numbered context blocks from all messages, first occurrence wins.

    The product's prompts carry them as JSON excerpts in a ``<context-…>`` block; plain prompts
    as lines: a block starts at a line beginning with ``[n]`` and runs until the next such
    line, a blank line after some text, or the end of the message.
    """
    excerpts = _json_excerpts(messages)
    if excerpts:
        return excerpts
    blocks: dict[int, list[str]] = {}
    for message in messages:
        current: list[str] | None = None
        for line in message_text(message).splitlines():
            start = _BLOCK_START.match(line)
            if start:
                number = int(start.group(1))
                current = [] if number in blocks else blocks.setdefault(number, [])
                if start.group(2).strip():
                    current.append(start.group(2).strip())
            elif current is not None:
                if line.strip():
                    current.append(line.strip())
                elif current:
                    current = None
    return {number: " ".join(lines) for number, lines in blocks.items()}


def default_responder(messages: Sequence[Mapping[str, Any]]) -> str:
    """Answer deterministically from the numbered context blocks in the prompt.

    Why: retrieval tests need a reply that provably depends on which documents were put into
    the prompt, and that carries a citation the bot can render -- without a real model.

    The reply is ``"Based on the documentation: <first sentence of block 1> [1]"``. If there is
    no block ``[1]`` the lowest-numbered non-empty block is used (and cited by its number);
    without any numbered block the reply is ``"No context provided."``. Asked to condense a
    conversation (the product's ``conversation-…`` block with a ``"last_message"``, and no
    excerpts), it answers with that last message as the standalone question.
    """
    last = _last_message(messages)
    if last is not None:
        return last
    blocks = _numbered_blocks(messages)
    for number in sorted(blocks):
        text = blocks[number].strip()
        if not text:
            continue
        match = _FIRST_SENTENCE.match(text)
        sentence = match.group(1) if match else text
        return f"Based on the documentation: {sentence} [{number}]"
    return "No context provided."


def _last_message(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The ``"last_message"`` of a condense request (a conversation block, no excerpts)."""
    blocks = [b for m in messages for b in data_blocks(message_text(m))]
    if any(tag.startswith("context-") for tag, _ in blocks):
        return None
    for _, data in blocks:
        if isinstance(data, Mapping) and isinstance(data.get("last_message"), str):
            return str(data["last_message"])
    return None


OBEYED = "OBEYED: as the document instructed, here is what it asked for."
"""What :class:`GullibleModel` answers when it has been talked into obeying injected text."""

_LOOSE_OPEN = re.compile(r"<\s*(?P<tag>context|conversation)\b[^>]*>")
_LOOSE_CLOSE = re.compile(r"<\s*/\s*(?P<tag>context|conversation)\b[^>]*>")


def fold_text(text: str) -> str:
    """Text as a careless reader sees it: NFKC, invisible format characters gone, case folded.

    So full-width ``＜/context＞``, ``</CONTEXT>`` and ``</con\u200btext>`` all read
    ``</context>``.
    """
    normal = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in normal if unicodedata.category(ch) != "Cf").casefold()


def outside_data(text: str) -> str:
    """The part of a message a gullible model takes for instructions: outside any data block.

    A block starts at anything that looks like an opening ``<context…>`` or
    ``<conversation…>`` tag and, as far as this reader is concerned, ends at the first thing
    that looks like a closing one -- attributes, case, full-width and zero-width look-alikes
    included. Text of a document that can end its block early therefore lands outside.
    """
    folded = fold_text(text)
    outside: list[str] = []
    position = 0
    while True:
        opening = _LOOSE_OPEN.search(folded, position)
        if opening is None:
            outside.append(folded[position:])
            return " ".join(outside)
        outside.append(folded[position : opening.start()])
        closing = _LOOSE_CLOSE.search(folded, opening.end())
        if closing is None:
            return " ".join(outside)
        position = closing.end()


class GullibleModel:
    """A stand-in chat model that obeys any planted instruction it finds outside the data.

    ``triggers`` are the injected instructions a test planted in documents. When one of them
    (compared after :func:`fold_text`, whitespace collapsed) appears in a user or assistant message
    outside the data blocks as :func:`outside_data` reads them, or in a system message, the
    model "obeys" and answers :data:`OBEYED`; otherwise it answers like
    :func:`default_responder`, or, asked to condense a conversation (a ``conversation-…`` block
    with a ``"last_message"`` and no excerpts), with that last message. Every prompt it was
    sent is kept in :attr:`prompts`, and :attr:`obeyed` counts the times it obeyed.
    """

    def __init__(self, triggers: Sequence[str]) -> None:
        self._triggers = [t for t in (" ".join(fold_text(x).split()) for x in triggers) if t]
        self.obeyed = 0
        self.prompts: list[list[dict[str, Any]]] = []
        self._lock = threading.Lock()

    def leaked(self, messages: Sequence[Mapping[str, Any]]) -> list[str]:
        """The triggers this prompt shows outside its data blocks."""
        seen: list[str] = []
        for message in messages:
            text = message_text(message)
            visible = fold_text(text) if message.get("role") == "system" else outside_data(text)
            flat = " ".join(visible.split())
            seen.extend(t for t in self._triggers if t in flat)
        return seen

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        with self._lock:
            self.prompts.append(messages)
        if self.leaked(messages):
            with self._lock:
                self.obeyed += 1
            return OBEYED
        return default_responder(messages)


def count_tokens(text: str) -> int:
    """Approximate token count: whitespace-separated words (good enough for usage tests)."""
    return len(text.split())


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the simulator received it.

    ``headers`` keys are lower-cased (HTTP header names are case-insensitive) so tests can
    look up ``"authorization"`` without guessing the client's spelling. ``body`` is the parsed
    JSON body, or ``None`` when the body was empty or not JSON (``raw_body`` keeps the bytes).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes = b""
    query: str = ""
    received_at: float = field(default_factory=time.time)

    @property
    def is_chat(self) -> bool:
        """Whether this was a ``POST /v1/chat/completions`` call."""
        return self.method == "POST" and self.path == CHAT_PATH


@dataclass(frozen=True)
class _Failure:
    """One queued injected failure (see :meth:`OpenAIChatSimulator.fail_next`)."""

    status: int
    retry_after: float | None
    body: Mapping[str, Any] | str | bytes | None


class _HTTPError(Exception):
    """Raised inside a handler to answer with an OpenAI-shaped error."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def _error_payload(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """Build OpenAI's error body; ``type`` follows what the real API uses per status."""
    if status == 429:
        error_type, code = "requests", code or "rate_limit_exceeded"
    elif status >= 500:
        error_type = "server_error"
    else:
        error_type = "invalid_request_error"
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its simulator and can sever open connections.

    Handler threads are daemons and never joined, so a hung handler cannot block ``stop()``;
    tracking the accepted sockets lets ``stop()`` close keep-alive connections too.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: OpenAIChatSimulator) -> None:
        self.simulator = simulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away (timeouts, ``stop()``); report the rest."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) or self.simulator.stopping:
            return
        super().handle_error(request, client_address)

    def sever_connections(self) -> None:
        """Shut down every accepted socket so blocked handler threads exit."""
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Parses one request, records it and dispatches to the simulator."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive + chunked streaming, like the real API
    server_version = "OpenAIChatSimulator/1.0"
    _chunked = False  # set per streamed response by start_event_stream()

    def setup(self) -> None:
        """Register the connection so ``stop()`` can sever it."""
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        """Unregister the connection; ignore errors from sockets the peer already closed."""
        try:
            super().finish()
        except OSError:
            pass
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def version_string(self) -> str:
        """Identify as the simulator (no Python version) in the ``Server`` header."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging unless the simulator was built with ``verbose=True``."""
        if self.server.simulator.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        """Dispatch GET requests."""
        self._dispatch()

    def do_POST(self) -> None:
        """Dispatch POST requests."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Dispatch PUT requests (always an error, but recorded)."""
        self._dispatch()

    def do_PATCH(self) -> None:
        """Dispatch PATCH requests (always an error, but recorded)."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Dispatch DELETE requests (always an error, but recorded)."""
        self._dispatch()

    # -- request reading -----------------------------------------------------------------

    def _read_body(self) -> bytes:
        """Read the whole request body so the keep-alive connection stays in sync."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # skip trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        raw = self._read_body()
        split = urlsplit(self.path)
        try:
            body: Any = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        record = RecordedRequest(
            method=self.command,
            path=split.path,
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
            raw_body=raw,
            query=split.query,
        )
        try:
            self.server.simulator._handle(self, record)
        except _HTTPError as err:
            self.send_json(err.status, _error_payload(err.status, err.message, err.code))

    # -- response writing ----------------------------------------------------------------

    def _common_headers(self) -> None:
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        if self.server.simulator.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True

    def send_json(
        self,
        status: int,
        payload: Mapping[str, Any] | str | bytes,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send a complete JSON (or, for str/bytes payloads, verbatim) response."""
        if isinstance(payload, bytes):
            data, content_type = payload, "application/octet-stream"
        elif isinstance(payload, str):
            data, content_type = payload.encode(), "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self._common_headers()
        self.end_headers()
        self.wfile.write(data)

    def start_event_stream(self) -> None:
        """Send SSE headers: chunked for HTTP/1.1 clients, close-delimited for HTTP/1.0."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self._chunked = self.request_version == "HTTP/1.1"
        if self._chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self._common_headers()
        self.end_headers()

    def send_event(self, data: str) -> None:
        """Send one ``data:`` event (one HTTP chunk when chunked)."""
        payload = f"data: {data}\n\n".encode()
        if self._chunked:
            payload = b"%x\r\n%s\r\n" % (len(payload), payload)
        self.wfile.write(payload)
        self.wfile.flush()

    def end_event_stream(self) -> None:
        """Terminate the chunked body (a close-delimited body ends when we close)."""
        if self._chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()


# --------------------------------------------------------------------------- the simulator


class OpenAIChatSimulator:
    """Local OpenAI Chat Completions server for tests and benchmarks (a context manager).

    Nothing happens in ``__init__``; :meth:`start` binds ``host`` (default ``127.0.0.1``) on
    ``port`` (default 0 = a free port) and serves from a background daemon thread, and
    :meth:`stop` returns promptly even while handlers are hung or streaming.

    Args:
        responder: ``messages -> reply text``; defaults to :func:`default_responder`. May be
            reassigned at runtime via the ``responder`` attribute.
        model: the model listed by ``GET /v1/models``. Chat replies echo the requested model.
        api_key: if set, only ``Bearer <api_key>`` is accepted; otherwise any non-empty key.
        require_auth: set ``False`` to accept requests without an ``Authorization`` header.
        latency: seconds slept before every chat completion response (see :attr:`latency`).
        chunk_delay: seconds slept between streamed content chunks (for time-to-first-token
            versus total-time benchmarks).
        hang_timeout: how long a hung request (:meth:`hang_next`) sleeps at most.
        verbose: log each request to stderr like ``http.server`` does.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        model: str = DEFAULT_MODEL,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        require_auth: bool = True,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        hang_timeout: float = 300.0,
        verbose: bool = False,
    ) -> None:
        self.responder: Responder = responder or default_responder
        self.model = model
        self.host = host
        self.requested_port = port
        self.api_key = api_key
        self.require_auth = require_auth
        self.hang_timeout = hang_timeout
        self.verbose = verbose
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._failures: collections.deque[_Failure] = collections.deque()
        self._hangs = 0
        self._latency = float(latency)
        self._chunk_delay = float(chunk_delay)
        self._stream_breaks: collections.deque[int] = collections.deque()
        self._stream_stalls: collections.deque[tuple[int, float]] = collections.deque()
        # How streamed content is cut into pieces (findall); e.g. re.compile(r".{1,3}", re.S)
        # for pieces that split words, links and mentions.
        self.stream_piece: re.Pattern[str] = _STREAM_PIECE
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the socket and start serving in a background thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("OpenAIChatSimulator is already running")
        self._stop_event = threading.Event()
        server = _Server((self.host, self.requested_port), self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # keeps shutdown() fast
            name=f"openai-simulator-{server.server_address[1]}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close all connections; safe to call twice.

        Hung and streaming handlers are woken (or have their sockets shut down) rather than
        waited for, so this returns in well under a second.
        """
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stop_event.set()
        server.shutdown()
        server.server_close()
        server.sever_connections()
        if thread is not None:
            thread.join(timeout=2)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is currently serving."""
        return self._server is not None

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` has begun (handlers use it to abandon work)."""
        return self._stop_event.is_set()

    @property
    def port(self) -> int:
        """The bound TCP port (only after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("OpenAIChatSimulator is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` to OpenAI clients: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    # -- recording -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot (copy) of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def chat_requests(self) -> list[dict[str, Any]]:
        """JSON bodies of all ``POST /v1/chat/completions`` calls, failed ones included."""
        return [r.body for r in self.requests if r.is_chat and isinstance(r.body, dict)]

    def clear_requests(self) -> None:
        """Forget recorded requests (e.g. between phases of one test)."""
        with self._lock:
            self._requests.clear()

    # -- fault injection -----------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        retry_after: float | None = None,
        body: Mapping[str, Any] | str | bytes | None = None,
    ) -> None:
        """Make the next ``n`` chat completion requests fail with ``status``.

        ``retry_after`` (seconds, fractions allowed) adds ``Retry-After`` and ``retry-after-ms``
        headers, which the ``openai`` client honours when retrying. ``body`` replaces the
        default OpenAI-shaped error JSON (a mapping is sent as JSON, str/bytes verbatim).
        Calls queue up: ``fail_next(1, 429); fail_next(1, 500)`` fails with 429, then 500.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        with self._lock:
            self._failures.extend([_Failure(status, retry_after, body)] * n)

    def hang_next(self, n: int = 1) -> None:
        """Make the next ``n`` chat completion requests hang before answering.

        A hung request sleeps until :meth:`stop` (then the connection is dropped unanswered)
        or ``hang_timeout`` seconds (then it is answered normally). Use it to test client
        timeouts; ``stop()`` does not wait for hung handlers.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._hangs += n

    def break_stream_next(self, after_pieces: int) -> None:
        """Drop the connection of the next streamed answer after ``after_pieces`` content
        pieces (no ``[DONE]``): a model or network failure in the middle of an answer."""
        if after_pieces < 0:
            raise ValueError("after_pieces must be >= 0")
        with self._lock:
            self._stream_breaks.append(after_pieces)

    def stall_stream_next(self, after_pieces: int, seconds: float) -> None:
        """Pause the next streamed answer for ``seconds`` after ``after_pieces`` content pieces
        (then it goes on): a model that stops writing for a while mid-answer."""
        if after_pieces < 0 or seconds < 0:
            raise ValueError("after_pieces and seconds must be >= 0")
        with self._lock:
            self._stream_stalls.append((after_pieces, seconds))

    def reset_faults(self) -> None:
        """Clear queued failures, hangs and stalls, set latency and chunk delay back to zero
        and stream word-sized pieces again (:attr:`stream_piece`)."""
        with self._lock:
            self._failures.clear()
            self._hangs = 0
            self._stream_breaks.clear()
            self._stream_stalls.clear()
            self.stream_piece = _STREAM_PIECE
            self._latency = 0.0
            self._chunk_delay = 0.0

    @property
    def latency(self) -> float:
        """Seconds slept before every chat completion response (injected failures included)."""
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        with self._lock:
            self._latency = float(seconds)

    @property
    def chunk_delay(self) -> float:
        """Seconds slept between streamed content chunks."""
        with self._lock:
            return self._chunk_delay

    @chunk_delay.setter
    def chunk_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("chunk_delay must be >= 0")
        with self._lock:
            self._chunk_delay = float(seconds)

    # -- request handling (called on handler threads) --------------------------------------

    def _handle(self, handler: _Handler, record: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(record)
        self._check_auth(record)
        if record.path == CHAT_PATH:
            if record.method != "POST":
                raise _HTTPError(405, f"Method not allowed ({record.method} {record.path})")
            self._chat(handler, record)
        elif record.path == MODELS_PATH or record.path.startswith(MODELS_PATH + "/"):
            if record.method != "GET":
                raise _HTTPError(405, f"Method not allowed ({record.method} {record.path})")
            self._models(handler, record.path)
        else:
            raise _HTTPError(404, f"Invalid URL ({record.method} {record.path})", "unknown_url")

    def _check_auth(self, record: RecordedRequest) -> None:
        if not self.require_auth:
            return
        scheme, _, key = record.headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise _HTTPError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_api_key",
            )
        if self.api_key is not None and key != self.api_key:
            raise _HTTPError(401, "Incorrect API key provided.", "invalid_api_key")

    def _models(self, handler: _Handler, path: str) -> None:
        entry = {"id": self.model, "object": "model", "created": 0, "owned_by": "simulator"}
        if path in (MODELS_PATH, MODELS_PATH + "/"):
            handler.send_json(200, {"object": "list", "data": [entry]})
        elif path[len(MODELS_PATH) + 1 :] == self.model:
            handler.send_json(200, entry)
        else:
            raise _HTTPError(
                404, f"The model '{path.rsplit('/', 1)[-1]}' does not exist", "model_not_found"
            )

    def _take_faults(self) -> tuple[bool, _Failure | None, float, float]:
        with self._lock:
            hang = self._hangs > 0
            if hang:
                self._hangs -= 1
            failure = self._failures.popleft() if self._failures else None
            return hang, failure, self._latency, self._chunk_delay

    def _chat(self, handler: _Handler, record: RecordedRequest) -> None:
        body = record.body
        if not isinstance(body, dict):
            raise _HTTPError(400, "We could not parse the JSON body of your request.")
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise _HTTPError(400, "'messages' must be a list of message objects.", "invalid_type")
        if not isinstance(body.get("model"), str):
            raise _HTTPError(
                400, "you must provide a model parameter", "missing_required_parameter"
            )

        hang, failure, latency, chunk_delay = self._take_faults()
        if hang and self._stop_event.wait(self.hang_timeout):
            handler.close_connection = True  # stopped while hung: drop it unanswered
            return
        if latency and self._stop_event.wait(latency):
            handler.close_connection = True
            return
        if failure is not None:
            self._send_failure(handler, failure)
            return

        try:
            content = self.responder(messages)
        except Exception as exc:  # a broken responder is a test bug; make it visible
            raise _HTTPError(500, f"Simulator responder raised {exc!r}") from exc
        if not isinstance(content, str):
            raise _HTTPError(500, f"Simulator responder returned {type(content).__name__}")

        prompt_tokens = sum(count_tokens(message_text(m)) for m in messages)
        completion_tokens = count_tokens(content)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_simulator",
        }
        if body.get("stream"):
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            self._stream(handler, base, content, usage if include_usage else None, chunk_delay)
            return
        handler.send_json(
            200,
            {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
        )

    def _send_failure(self, handler: _Handler, failure: _Failure) -> None:
        headers: dict[str, str] = {}
        if failure.retry_after is not None:
            headers["Retry-After"] = f"{failure.retry_after:g}"
            headers["retry-after-ms"] = str(round(failure.retry_after * 1000))
        payload: Mapping[str, Any] | str | bytes
        if failure.body is not None:
            payload = failure.body
        elif failure.status == 429:
            payload = _error_payload(429, "Rate limit reached (simulated by OpenAIChatSimulator).")
        else:
            payload = _error_payload(
                failure.status, f"Simulated failure with status {failure.status}."
            )
        handler.send_json(failure.status, payload, headers)

    def _stream(
        self,
        handler: _Handler,
        base: dict[str, Any],
        content: str,
        usage: dict[str, int] | None,
        chunk_delay: float,
    ) -> None:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
            data: dict[str, Any] = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if usage is not None:
                data["usage"] = None  # the real API sends null on every chunk but the last
            return json.dumps(data)

        with self._lock:
            breaks_after = self._stream_breaks.popleft() if self._stream_breaks else None
            stall = self._stream_stalls.popleft() if self._stream_stalls else None
            pieces = self.stream_piece.findall(content)
        handler.start_event_stream()
        handler.send_event(chunk({"role": "assistant", "content": "", "refusal": None}))
        for sent, piece in enumerate(pieces):
            if breaks_after is not None and sent >= breaks_after:
                handler.close_connection = True  # dropped mid-answer: no [DONE]
                return
            if stall is not None and sent == stall[0] and self._stop_event.wait(stall[1]):
                handler.close_connection = True
                return
            if chunk_delay and self._stop_event.wait(chunk_delay):
                handler.close_connection = True
                return
            handler.send_event(chunk({"content": piece}))
        handler.send_event(chunk({}, "stop"))
        if usage is not None:
            handler.send_event(
                json.dumps(
                    {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
                )
            )
        handler.send_event("[DONE]")
        handler.end_event_stream()


FakeOpenAIServer = OpenAIChatSimulator
"""Alias: the name used in the original design notes."""


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """Serve from the command line until Ctrl-C (or SIGTERM), for manual trials and benchmarks."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.servers.openai_chat",
        description="Local OpenAI-compatible Chat Completions server (deterministic replies).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8099, help="port, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each chat reply")
    parser.add_argument(
        "--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks"
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model listed by /v1/models")
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any key)")
    parser.add_argument("--no-auth", action="store_true", help="accept requests without a key")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    simulator = OpenAIChatSimulator(
        model=args.model,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        require_auth=not args.no_auth,
        latency=args.latency,
        chunk_delay=args.chunk_delay,
        verbose=args.verbose,
    )

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Explicit handlers: a shell starting us in the background may have ignored SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_signal)
    with simulator:
        print(simulator.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
