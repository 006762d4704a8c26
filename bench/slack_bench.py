"""Slack bot overhead benchmark: event receipt to answer posted, at 1 and 20 conversations.

Run from the repository root::

    .venv/bin/python bench/slack_bench.py [--reuse] [--llm-latency 0.5] [--quick]

The bot is the product's own: :func:`supportbot.run.build_slack_bot` on an :class:`App` in LLM
mode, served over HTTP like ``supportbot run --slack-http`` (bolt's aiohttp app on a free local
port, ``asyncio.run`` with the loop's default executor). Around it, in a separate process, run
the local Slack simulator, a fixed-latency OpenAI-compatible chat simulator (both from
``tests/servers/``) and the load generator, which posts signed ``app_mention`` events and
waits for the ``chat.update`` that turns each placeholder into the answer.

The knowledge is one workspace of >= 10,000 real chunks (KorQuAD + PolicyQA paragraphs at small
chunk size, as ``retrieval_bench.py``'s latency workspace), kept in
``bench/results/data-slack`` (git-ignored); ``--reuse`` keeps it between runs. See
``bench/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import functools
import gc
import inspect
import itertools
import json
import logging
import multiprocessing
import os
import random
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import retrieval_bench as rb  # bench/ is sys.path[0] when this file runs as a script
from aiohttp import web
from pydantic import SecretStr

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))  # the simulators live in tests/servers/

from bot.message import IncomingMessage  # noqa: E402
from bot.service import APOLOGY  # noqa: E402
from retrieval.workspaces import IdentityKind  # noqa: E402
from supportbot.app import App  # noqa: E402
from supportbot.run import build_slack_bot, ready_to_serve  # noqa: E402
from supportbot.settings import Settings  # noqa: E402

RESULTS = REPO / "bench" / "results"
WORKSPACE = "bench-slack"
MARKER = "slack-bench-workspace.json"  # in the data dir: what the workspace holds
TEAM = "T111"
BOT_TOKEN = "xoxb-bench"
BOT_USER = "W111"
BOT_ID = "B111"
SIGNING_SECRET = "bench-signing-secret"
LLM_KEY = "bench-key"
LLM_MODEL = "sim"
ASKER = "U222"
CHUNK_TOKENS = 56  # small chunks, so KorQuAD + PolicyQA give >= 10,000 real chunks
OVERLAP_TOKENS = 8
CONVERSATION_TIMEOUT_S = 120.0
TARGET_P95_OVERHEAD_MS = 150.0
TARGET_ACK_MS = 3000.0  # Slack retries an event that is not acknowledged within 3 s
_EXTRA_VARIABLES = (
    "SUPPORTBOT_LOG_LEVEL", "LLM_MODEL", "LLM_BASE_URL", "LLM_API_KEY", "LLM_TIMEOUT_S",
    "LLM_TEMPERATURE", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET",
    "SLACK_API_URL",
)  # fmt: skip

_STARTED = time.monotonic()


def log(message: str) -> None:
    elapsed = time.monotonic() - _STARTED
    print(f"[{elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)


# --- the conversations ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Conversation:
    """One question asked in its own channel (so every Slack call is attributable)."""

    id: str
    channel: str
    event_id: str
    ts: str
    question: str
    language: str


def make_conversations(
    questions: Sequence[tuple[str, str]], *, prefix: str, run_tag: str, start: int
) -> list[Conversation]:
    out = []
    base = int(time.time())
    for index, (question, language) in enumerate(questions):
        n = start + index
        out.append(
            Conversation(
                id=f"{prefix}-{index:04d}",
                channel=f"C{run_tag}{prefix.upper()}{index:04d}",
                event_id=f"Ev{run_tag}{n:05d}",
                ts=f"{base}.{n:06d}",
                question=question,
                language=language,
            )
        )
    return out


def pick_questions(policies: set[str], *, seed: int = 0) -> list[tuple[str, str]]:
    """Distinct questions, KorQuAD and PolicyQA alternating (PolicyQA: the ingested policies)."""
    korquad = rb.load_korquad(quick=False)
    policyqa = rb.load_policyqa(quick=False)
    korean = list(dict.fromkeys(" ".join(q.text.split()) for q in korquad.queries))
    english = list(
        dict.fromkeys(" ".join(q.text.split()) for q in policyqa.queries if q.workspace in policies)
    )
    rng = random.Random(seed)
    rng.shuffle(korean)
    rng.shuffle(english)
    out: list[tuple[str, str]] = []
    for ko, en in itertools.zip_longest(korean, english):
        out += [(q, lang) for q, lang in ((ko, "ko"), (en, "en")) if q is not None]
    return out


# --- the driver process: Slack simulator, chat simulator, load generator -----------------------


def _slack_simulator_class() -> type[Any]:
    from tests.servers.slack import SlackCall, SlackSimulator

    class WatchedSlack(SlackSimulator):
        """The simulator, plus a future per channel resolved by that channel's chat.update."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._watch_lock = threading.Lock()
            self._watchers: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = {}

        def expect_update(self, channel: str) -> asyncio.Future[Any]:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[Any] = loop.create_future()
            with self._watch_lock:
                self._watchers[channel] = (loop, future)
            return future

        def _record(self, call: SlackCall) -> None:
            super()._record(call)
            if call.method != "chat.update":
                return
            with self._watch_lock:
                waiter = self._watchers.pop(str(call.args.get("channel")), None)
            if waiter is not None:
                loop, future = waiter
                loop.call_soon_threadsafe(_resolve, future, call)

    return WatchedSlack


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


class RecordingResponder:
    """The simulator's default answer, noting when each reply was produced (after the latency)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.replies: list[tuple[str, float]] = []  # (question, time the reply was made)

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        from tests.servers.openai_chat import default_responder

        answered_at = time.time()
        with self._lock:
            self.replies.append((question_of(messages), answered_at))
        return default_responder(messages)

    def take(self) -> list[tuple[str, float]]:
        with self._lock:
            replies, self.replies = self.replies, []
        return replies


def question_of(messages: Sequence[Mapping[str, Any]]) -> str:
    """The question in the answer prompt's last human message (``... Question: {question}``)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
            return text.rsplit("Question: ", 1)[-1].strip()
    return ""


def driver_main(conn: Connection, options: dict[str, Any]) -> None:
    """Entry point of the driver process; answers commands from the bench over ``conn``."""
    from tests.servers import openai_chat

    if options["llm_nodelay"]:
        # The simulator writes a response's headers and body separately; with Nagle on, the
        # body waits for the client's delayed ACK of the headers (~40 ms, for the async
        # OpenAI client in about half the responses). A real API does not add that.
        openai_chat._Handler.disable_nagle_algorithm = True
    responder = RecordingResponder()
    slack = _slack_simulator_class()(ts_start=options["ts_start"])
    llm = openai_chat.OpenAIChatSimulator(
        responder,
        api_key=LLM_KEY,
        latency=options["llm_latency"],
        chunk_delay=0.0,
    )
    with slack, llm:
        slack.add_workspace(TEAM, BOT_TOKEN, bot_user_id=BOT_USER, bot_id=BOT_ID)
        conn.send({"slack_port": slack.port, "llm_base_url": llm.base_url, "pid": os.getpid()})
        while True:
            command = conn.recv()
            if command["cmd"] == "stop":
                break
            if command["cmd"] == "run":
                slack.clear_calls()
                llm.clear_requests()
                responder.take()
                cpu = time.process_time()
                outcomes = asyncio.run(_drive(slack, command))
                driver_cpu = time.process_time() - cpu
                conn.send(_collect(slack, llm, responder, outcomes, driver_cpu))
    conn.close()


async def _drive(slack: Any, command: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Post every conversation's event, ``concurrency`` in flight, each waiting for its answer."""
    import httpx

    from tests.servers.slack import event_envelope, load_shared_fixture, signed_event_request

    conversations: list[Conversation] = [Conversation(**c) for c in command["conversations"]]
    url: str = command["bot_url"]
    template = load_shared_fixture("scenario_tests__test_app__app_mention_event_body__L334")
    template.pop("enterprise_id", None)
    pending = list(reversed(conversations))
    outcomes: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)

    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def one(conversation: Conversation) -> dict[str, Any]:
            event = dict(template["event"])
            event.update(
                {
                    "text": f"<@{BOT_USER}> {conversation.question}",
                    "team": TEAM,
                    "channel": conversation.channel,
                    "ts": conversation.ts,
                    "event_ts": conversation.ts,
                    "user": ASKER,
                    "client_msg_id": conversation.event_id,
                }
            )
            body = event_envelope(
                event, team_id=TEAM, event_id=conversation.event_id, bot_user_id=BOT_USER
            )
            raw, headers = signed_event_request(body, SIGNING_SECRET)
            answered = slack.expect_update(conversation.channel)
            t0 = time.time()
            status = 0
            try:
                response = await client.post(url, content=raw, headers=headers)
                status = response.status_code
            except httpx.HTTPError as e:
                log(f"POST failed for {conversation.id}: {e!r}")
            t_ack = time.time()
            update: Any = None
            try:
                update = await asyncio.wait_for(answered, CONVERSATION_TIMEOUT_S)
            except TimeoutError:
                log(f"no answer for {conversation.id} within {CONVERSATION_TIMEOUT_S:.0f} s")
            return {
                "id": conversation.id,
                "t0": t0,
                "t_ack": t_ack,
                "status": status,
                "t_update": update.received_at if update is not None else None,
                "update_ts": str(update.args.get("ts")) if update is not None else None,
                "update_text": str(update.args.get("text") or "") if update is not None else "",
                "update_ok": bool(update is not None and update.ok),
            }

        async def worker(delay: float) -> None:
            await asyncio.sleep(delay)
            while pending:
                outcomes.append(await one(pending.pop()))

        # Staggered: each worker starts at a random point of one answer cycle, so arrivals are
        # spread over the cycle (and, with a fixed LLM latency, stay spread). Burst: all start
        # together, and stay in phase: every cycle, all questions arrive at once.
        rng = random.Random(int(command["seed"]))
        spread = float(command["stagger_s"])
        delays = [rng.uniform(0, spread) for _ in range(int(command["concurrency"]))]
        await asyncio.gather(*(worker(d) for d in delays))
    return outcomes


def _collect(
    slack: Any,
    llm: Any,
    responder: RecordingResponder,
    outcomes: list[dict[str, Any]],
    driver_cpu_s: float,
) -> dict[str, Any]:
    calls = slack.calls
    by_channel: dict[str, list[Any]] = {}
    other: Counter[str] = Counter()
    for call in calls:
        channel = call.args.get("channel")
        if isinstance(channel, str) and channel:
            by_channel.setdefault(channel, []).append(call)
        else:
            other[call.method] += 1
    slack_calls = {
        channel: [
            {
                "method": c.method,
                "received_at": c.received_at,
                "ok": c.ok,
                "ts": str((c.response or {}).get("ts") or ""),
                "thread_ts": str(c.args.get("thread_ts") or ""),
            }
            for c in channel_calls
        ]
        for channel, channel_calls in by_channel.items()
    }
    requests = [
        (question_of(r.body.get("messages") or []), r.received_at)
        for r in llm.requests
        if r.is_chat and isinstance(r.body, dict)
    ]
    return {
        "outcomes": outcomes,
        "slack_calls": slack_calls,
        "other_slack_calls": dict(other),
        "llm_requests": requests,
        "llm_replies": responder.take(),
        "driver_cpu_s": driver_cpu_s,
    }


class Driver:
    """The bench's handle on the driver process."""

    def __init__(
        self,
        *,
        llm_latency: float,
        llm_nodelay: bool,
        target: Callable[[Connection, dict[str, Any]], None] = driver_main,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """``target``/``options``: another bench's driver process (``stream_bench.py``)."""
        context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._conn, child = context.Pipe()
        options = {
            "llm_latency": llm_latency,
            "llm_nodelay": llm_nodelay,
            "ts_start": int(time.time()),
            **(options or {}),
        }
        self._process = context.Process(
            target=target, args=(child, options), name="slack-bench-driver", daemon=True
        )
        self._process.start()
        child.close()
        hello = self._conn.recv()
        self.hello: dict[str, Any] = hello
        self.slack_port: int = hello["slack_port"]
        self.llm_base_url: str = hello["llm_base_url"]
        self.pid: int = hello["pid"]
        self._lock = threading.Lock()

    def request(self, command: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._conn.send(command)
            reply: dict[str, Any] = self._conn.recv()
            return reply

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send({"cmd": "stop"})
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)


# --- bot-side instrumentation (timing only; the product code is untouched) -------------------

# The conversation the running asyncio task serves: set when a blocking call's arguments name
# it (the listener's first call gets the message), inherited by the task's later calls and by
# tasks it creates (aiohttp's DNS lookups), since asyncio copies the context.
CONVERSATION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "bench_conversation", default=None
)


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One blocking call the bot handed to the event loop's default executor."""

    name: str
    key: str | None  # the conversation it belongs to
    submitted: float
    started: float
    ended: float


class TimedExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor that records, per task, when it was submitted, started and ended.

    Installed as the loop's default executor with the size Python would give it, so the bot's
    ``asyncio.to_thread`` calls (and aiohttp's ``getaddrinfo``) behave exactly as with the
    default one, but their queueing is visible.
    """

    def __init__(self, max_workers: int, key_of: Callable[[Sequence[Any]], str | None]) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="asyncio")
        self.workers = max_workers
        self._key_of = key_of
        self.records: list[TaskRecord] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        submitted = time.time()
        func, call_args = fn, args
        if isinstance(fn, functools.partial) and fn.args:  # asyncio.to_thread: ctx.run(f, ...)
            func, call_args = fn.args[0], fn.args[1:]
        name = str(getattr(func, "__qualname__", None) or getattr(func, "__name__", repr(func)))
        key = self._key_of(call_args)
        if key is not None:
            CONVERSATION.set(key)  # submit runs in the calling task's context
        else:
            key = CONVERSATION.get()

        def run() -> Any:
            started = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.records.append(TaskRecord(name, key, submitted, started, time.time()))

        return super().submit(run)


class TimedLock:
    """Stands in for the embedder's model lock and notes, per thread, how long it waited."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._local = threading.local()

    def __enter__(self) -> TimedLock:
        start = time.time()
        self._inner.acquire()
        self._local.wait = time.time() - start
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.release()

    def take_wait(self) -> float:
        wait = float(getattr(self._local, "wait", 0.0))
        self._local.wait = 0.0
        return wait


Span = tuple[str, float, float]  # (question or query text, start, end)


@dataclass(slots=True)
class Probe:
    """Timed wrappers, keyed by question text, around the answer, the query embedding
    (with the wait for the model's lock) and the store's search."""

    answers: list[Span] = field(default_factory=list)
    embeds: list[tuple[str, float, float, float]] = field(default_factory=list)  # + lock wait
    searches: list[Span] = field(default_factory=list)
    batches: list[tuple[int, float]] = field(default_factory=list)  # (queries, seconds)
    notes: list[str] = field(default_factory=list)

    def install(self, app: App) -> None:
        service: Any = app.conversations
        embedder: Any = app.embedder
        store: Any = app.store
        answer = service.answer
        embed_query = embedder.embed_query
        search = store.search
        lock: TimedLock | None = None
        if isinstance(getattr(embedder, "_lock", None), type(threading.Lock())):
            lock = TimedLock(embedder._lock)
            embedder._lock = lock
        else:
            self.notes.append("the embedder has no lock to time: lock wait not separated")

        if inspect.iscoroutinefunction(answer):

            @functools.wraps(answer)
            async def timed_answer(workspace: Any, question: str, *args: Any) -> Any:
                start = time.time()
                try:
                    return await answer(workspace, question, *args)
                finally:
                    self.answers.append((question, start, time.time()))

            service.answer = timed_answer
        else:

            @functools.wraps(answer)
            def timed_answer_sync(workspace: Any, question: str, *args: Any) -> Any:
                start = time.time()
                try:
                    return answer(workspace, question, *args)
                finally:
                    self.answers.append((question, start, time.time()))

            service.answer = timed_answer_sync

        def timed_embed(text: str) -> list[float]:
            start = time.time()
            try:
                result: list[float] = embed_query(text)
                return result
            finally:
                wait = lock.take_wait() if lock is not None else 0.0
                self.embeds.append((text, start, time.time(), wait))

        def timed_search(query: str, *args: Any, **kwargs: Any) -> Any:
            start = time.time()
            try:
                return search(query, *args, **kwargs)
            finally:
                self.searches.append((query, start, time.time()))

        embedder.embed_query = timed_embed
        store.search = timed_search
        loaded = getattr(embedder, "_loaded", None)
        model = loaded() if callable(loaded) else None
        if model is not None and hasattr(model, "query"):
            query = model.query

            def timed_query(texts: Any) -> Any:
                start = time.perf_counter()
                try:
                    return query(texts)
                finally:
                    size = len(texts) if isinstance(texts, list | tuple) else 1
                    self.batches.append((size, time.perf_counter() - start))

            model.query = timed_query

    def take(
        self,
    ) -> tuple[
        list[Span], list[tuple[str, float, float, float]], list[Span], list[tuple[int, float]]
    ]:
        answers, self.answers = self.answers, []
        embeds, self.embeds = self.embeds, []
        searches, self.searches = self.searches, []
        batches, self.batches = self.batches, []
        return answers, embeds, searches, batches


class Keys:
    """Maps a blocking call's arguments (message, channel, event id, question) to a conversation."""

    def __init__(self) -> None:
        self._map: dict[str, str] = {}

    def set(self, conversations: Iterable[Conversation]) -> None:
        mapping: dict[str, str] = {}
        for c in conversations:
            mapping[c.channel] = mapping[c.event_id] = mapping[c.question] = c.id
        self._map = mapping

    def __call__(self, args: Sequence[Any]) -> str | None:
        for arg in args:
            if isinstance(arg, IncomingMessage):
                return self._map.get(arg.channel_id)
            if isinstance(arg, str) and arg in self._map:
                return self._map[arg]
        return None


class LoopLag:
    """How late a 5 ms sleep on the bot's event loop wakes up (the loop busy or starved)."""

    PERIOD_S = 0.005

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (time.time(), lateness s)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.PERIOD_S)
            self.samples.append((time.time(), loop.time() - start - self.PERIOD_S))

    def between(self, start: float, end: float) -> list[float]:
        return [lag for at, lag in self.samples if start <= at <= end]


class GcPauses:
    """Garbage collections in the bot process: (time.time() at the end, generation, seconds)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, int, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((time.time(), info["generation"], time.perf_counter() - self._start))

    def between(self, start: float, end: float) -> dict[str, Any]:
        inside = [(g, d) for at, g, d in self.pauses if start <= at <= end]
        full = [d for g, d in inside if g == 2]
        return {
            "collections": len(inside),
            "total_ms": round(sum(d for _, d in inside) * 1000, 1),
            "full_collections": len(full),
            "full_max_ms": round(max(full, default=0.0) * 1000, 1),
        }


# --- measuring one level ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Level:
    """One measured load: ``concurrency`` conversations in flight, ``workers`` executor threads."""

    name: str
    concurrency: int
    workers: int
    burst: bool  # all workers start together (else staggered over one answer cycle)
    conversations: list[Conversation]


def default_executor_workers() -> int:
    """What Python 3.11's ThreadPoolExecutor() (the loop's default executor) would use."""
    return min(32, (os.cpu_count() or 1) + 4)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stats_ms(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    array = np.asarray(values, dtype=float) * 1000
    return {
        "n": len(values),
        "p50": round(float(np.percentile(array, 50)), 1),
        "p95": round(float(np.percentile(array, 95)), 1),
        "mean": round(float(array.mean()), 1),
        "max": round(float(array.max()), 1),
    }


def _max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    spans = list(intervals)
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = current = 0
    for _, step in edges:
        current += step
        best = max(best, current)
    return best


FIGURES = (
    "e2e",
    "overhead",
    "overhead_measured_llm",
    "ack",
    "to_placeholder",
    "placeholder_to_answer_start",
    "answer_run",
    "answer_end_to_update",
    "embed_query",
    "embed_lock_wait",
    "weaviate_search",
    "llm_server",
    "answer_executor_wait",
    "answer_other",
    "to_llm_request",
    "after_llm_reply",
    "executor_wait_before_answer",
    "executor_wait_after_answer",
    "executor_wait",
)


@dataclass(frozen=True, slots=True)
class Bot:
    """What the bot side recorded during one level."""

    tasks: list[TaskRecord]
    answers: list[Span]
    embeds: list[tuple[str, float, float, float]]
    searches: list[Span]
    loop_lag: list[float]
    gc: dict[str, Any]
    batches: list[tuple[int, float]]  # the embedding model's query calls: (queries, seconds)


def _per_question(spans: Iterable[Span], ids: Mapping[str, str]) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = {}
    for span in spans:
        out.setdefault(ids.get(span[0], "?"), []).append(span)
    return out


def conversation_row(
    conversation: Conversation,
    outcome: Mapping[str, Any],
    calls: Sequence[Mapping[str, Any]],
    llm: Sequence[tuple[float, float]],
    answer: Span | None,
    tasks: Sequence[TaskRecord],
    embeds: Sequence[tuple[str, float, float, float]],
    searches: Sequence[Span],
    llm_latency: float,
) -> dict[str, Any] | str:
    """The timings of one conversation, or why it has none."""
    placeholder = next((c for c in calls if c["method"] == "chat.postMessage"), None)
    if outcome["t_update"] is None or placeholder is None:
        return "no chat.update of its placeholder"
    if outcome["update_ts"] != placeholder["ts"]:
        return "the chat.update was not for its placeholder"
    n_llm = len(llm)
    text = outcome["update_text"]
    if any(text.startswith(a[:30]) for a in APOLOGY.values()):
        kind = "apology"
    elif n_llm:
        kind = "answered (LLM)"
    else:
        kind = "not found (no LLM call)"
    llm_server = sum(end - start for start, end in llm)
    e2e = outcome["t_update"] - outcome["t0"]
    row: dict[str, Any] = {
        "id": conversation.id,
        "language": conversation.language,
        "kind": kind,
        "status": outcome["status"],
        "e2e": e2e,
        "overhead": e2e - n_llm * llm_latency,
        "overhead_measured_llm": e2e - llm_server,
        "ack": outcome["t_ack"] - outcome["t0"],
        "to_placeholder": placeholder["received_at"] - outcome["t0"],
        "llm_requests": n_llm,
        "llm_server": llm_server,
        "slack_calls": len(calls),
        "answer_parts": sum(1 for c in calls if c["method"] == "chat.postMessage"),
        "executor_tasks": len(tasks),
        "executor_wait": sum(t.started - t.submitted for t in tasks),
    }
    if answer is None:
        return row
    _, a_start, a_end = answer
    lock_wait = sum(w for _, _, _, w in embeds)
    embed = sum(end - start for _, start, end, _ in embeds)
    store = sum(end - start for _, start, end in searches)
    inside = [t for t in tasks if a_start <= t.submitted <= a_end]
    inside_wait = sum(t.started - t.submitted for t in inside)
    run = a_end - a_start
    if llm and searches:
        # "the rest" around the LLM call: from the search's end to the request's arrival at
        # the LLM server (prompt, client, send), and from the reply to the answer's end.
        row["to_llm_request"] = min(start for start, _ in llm) - max(e for _, _, e in searches)
        row["after_llm_reply"] = a_end - max(end for _, end in llm)
    row.update(
        {
            "placeholder_to_answer_start": a_start - placeholder["received_at"],
            "answer_run": run,
            "answer_end_to_update": outcome["t_update"] - a_end,
            "embed_query": embed,
            "embed_lock_wait": lock_wait,
            "weaviate_search": store,
            "answer_executor_wait": inside_wait,
            "answer_other": run - embed - store - llm_server - inside_wait,
            "executor_wait_before_answer": sum(
                t.started - t.submitted for t in tasks if t.submitted < a_start
            ),
            "executor_wait_after_answer": sum(
                t.started - t.submitted for t in tasks if t.submitted > a_end
            ),
        }
    )
    return row


def analyse(
    name: str,
    concurrency: int,
    burst: bool,
    workers: int,
    conversations: Sequence[Conversation],
    driven: Mapping[str, Any],
    bot: Bot,
    *,
    llm_latency: float,
    cpu: Mapping[str, float],
    loadavg: Sequence[Sequence[float]],
) -> dict[str, Any]:
    by_id = {c.id: c for c in conversations}
    ids = {c.question: c.id for c in conversations}
    llm_starts: dict[str, list[float]] = {}
    for question, received_at in driven["llm_requests"]:
        llm_starts.setdefault(ids.get(question, "?"), []).append(received_at)
    llm_ends: dict[str, list[float]] = {}
    for question, answered_at in driven["llm_replies"]:
        llm_ends.setdefault(ids.get(question, "?"), []).append(answered_at)
    tasks_of: dict[str, list[TaskRecord]] = {}
    for task in bot.tasks:
        tasks_of.setdefault(task.key or "?", []).append(task)
    answers_of = _per_question(bot.answers, ids)
    embeds_of: dict[str, list[tuple[str, float, float, float]]] = {}
    for embed in bot.embeds:
        embeds_of.setdefault(ids.get(embed[0], "?"), []).append(embed)
    searches_of = _per_question(bot.searches, ids)

    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    for outcome in driven["outcomes"]:
        conversation = by_id[outcome["id"]]
        cid = conversation.id
        starts, ends = sorted(llm_starts.get(cid, [])), sorted(llm_ends.get(cid, []))
        row = conversation_row(
            conversation,
            outcome,
            driven["slack_calls"].get(conversation.channel, []),
            list(zip(starts, ends, strict=False)),
            answers_of[cid][-1] if answers_of.get(cid) else None,
            tasks_of.get(cid, []),
            embeds_of.get(cid, []),
            searches_of.get(cid, []),
            llm_latency,
        )
        if isinstance(row, str):
            failures.append(f"{cid}: {row}")
        else:
            rows.append(row)

    def column(key: str, rows_: Sequence[Mapping[str, Any]] = rows) -> list[float]:
        return [float(r[key]) for r in rows_ if key in r]

    t0s = [o["t0"] for o in driven["outcomes"]]
    t1s = [o["t_update"] for o in driven["outcomes"] if o["t_update"] is not None]
    span = (max(t1s) - min(t0s)) if t1s else 0.0
    per_function: dict[str, Any] = {}
    for task_name in sorted({t.name for t in bot.tasks}):
        of_name = [t for t in bot.tasks if t.name == task_name]
        per_function[task_name] = {
            "calls": len(of_name),
            "wait": _stats_ms([t.started - t.submitted for t in of_name]),
            "run": _stats_ms([t.ended - t.started for t in of_name]),
        }
    llm_with = [r for r in rows if r["llm_requests"]]
    n_done = len(rows)
    answer_threads = any(t.name.endswith(".answer") for t in bot.tasks)
    mean_answer = float(np.mean(column("answer_run"))) if column("answer_run") else 0.0
    nproc = len(os.sched_getaffinity(0))
    return {
        "name": name,
        "concurrency": concurrency,
        "start": "burst" if burst else ("staggered" if concurrency > 1 else "-"),
        "executor_workers": workers,
        "conversations": len(conversations),
        "completed": n_done,
        "failures": failures,
        "kinds": dict(Counter(r["kind"] for r in rows)),
        "http_status": dict(Counter(str(o["status"]) for o in driven["outcomes"])),
        "wall_s": round(span, 2),
        "conversations_per_s": round(n_done / span, 2) if span else None,
        "figures_ms": {key: _stats_ms(column(key)) for key in FIGURES},
        "overhead_ms_llm_answers_only": _stats_ms(column("overhead", llm_with)),
        "overhead_ms_by_language": {
            lang: _stats_ms(column("overhead", [r for r in rows if r["language"] == lang]))
            for lang in ("ko", "en")
        },
        "loop_lag_ms": _stats_ms(bot.loop_lag),
        "gc": bot.gc,
        "embedding_batches": {
            "calls": len(bot.batches),
            "queries": sum(n for n, _ in bot.batches),
            "size_mean": round(float(np.mean([n for n, _ in bot.batches])), 2)
            if bot.batches
            else None,
            "size_max": max((n for n, _ in bot.batches), default=0),
            "ms_per_call": _stats_ms([d for _, d in bot.batches]),
        },
        "counts_per_conversation": {
            "slack_calls": dict(Counter(str(r["slack_calls"]) for r in rows)),
            "llm_requests": dict(Counter(str(r["llm_requests"]) for r in rows)),
            "executor_tasks": dict(Counter(str(r["executor_tasks"]) for r in rows)),
            "answer_parts": dict(Counter(str(r["answer_parts"]) for r in rows)),
        },
        "other_slack_calls": driven["other_slack_calls"],
        "executor": {
            "per_function": per_function,
            "max_tasks_at_once": _max_overlap((t.started, t.ended) for t in bot.tasks),
            "answer_runs_in_executor": answer_threads,
            "unattributed_tasks": sum(1 for t in bot.tasks if t.key is None),
        },
        "max_answers_at_once": _max_overlap((s, e) for _, s, e in bot.answers),
        "cpu_ms_per_conversation": {k: round(v * 1000 / max(n_done, 1), 1) for k, v in cpu.items()},
        "cpu_utilisation": {k: round(v / span / nproc, 3) if span else 0.0 for k, v in cpu.items()},
        # When each answer holds an executor thread for its whole run (LLM call included), more
        # conversations than threads cannot average much less than this end-to-end.
        "executor_floor_mean_e2e_ms": round(concurrency * mean_answer / workers * 1000, 1)
        if answer_threads and concurrency > workers
        else None,
        "loadavg": [list(x) for x in loadavg],
        "per_conversation": [
            {k: (round(v * 1000, 1) if isinstance(v, float) else v) for k, v in r.items()}
            for r in rows
        ],
    }


async def measure(
    app: App,
    driver: Driver,
    plan: Sequence[Level],
    *,
    warmup: list[Conversation],
    llm_latency: float,
    weaviate_pid: int | None,
    notes: list[str],
) -> list[dict[str, Any]]:
    """Serve the bot over HTTP in this loop and run each level of ``plan`` against it."""
    loop = asyncio.get_running_loop()
    keys = Keys()
    probe = Probe()
    probe.install(app)
    notes.extend(probe.notes)
    # As `supportbot run` does: ready the app (model loaded, heap frozen), then one HTTP
    # session shared by every Slack Web API call.
    ready_to_serve(app)
    session = aiohttp.ClientSession()
    bot = build_slack_bot(app, http=True, session=session)
    port = _free_port()
    runner = web.AppRunner(bot.app.web_app(path="/slack/events", port=port))
    await runner.setup()
    await web.TCPSite(runner, host="127.0.0.1", port=port).start()
    bot_url = f"http://127.0.0.1:{port}/slack/events"
    log(f"bot on {bot_url}; Slack API at {app.settings.slack_api_url}")
    control = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-control")
    clock = rb.CpuClock(weaviate_pid)
    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run())
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)

    async def drive(
        conversations: list[Conversation], concurrency: int, *, burst: bool = True
    ) -> dict[str, Any]:
        keys.set(conversations)
        command = {
            "cmd": "run",
            "bot_url": bot_url,
            "concurrency": concurrency,
            "conversations": [asdict(c) for c in conversations],
            "stagger_s": 0.0 if burst or concurrency == 1 else llm_latency + 0.05,
            "seed": len(conversations),
        }
        return await loop.run_in_executor(control, driver.request, command)

    results = []
    try:
        executor = TimedExecutor(default_executor_workers(), keys)
        loop.set_default_executor(executor)
        log(f"warm-up: {len(warmup)} conversations, one at a time")
        await drive(warmup, 1)
        for level in plan:
            name, concurrency, workers = level.name, level.concurrency, level.workers
            conversations = level.conversations
            if workers != executor.workers:
                executor.shutdown(wait=False)
                executor = TimedExecutor(workers, keys)
                loop.set_default_executor(executor)
                log(f"default executor replaced: {workers} workers (what-if)")
            executor.records = []
            probe.take()
            load_before = rb.load_average()
            own_cpu, weaviate_cpu = clock.now()
            started = time.time()
            log(f"{name}: {len(conversations)} conversations, {concurrency} at once")
            driven = await drive(conversations, concurrency, burst=level.burst)
            own_end, weaviate_end = clock.now()
            answers, embeds, searches, batches = probe.take()
            result = analyse(
                name,
                concurrency,
                level.burst,
                executor.workers,
                conversations,
                driven,
                Bot(
                    list(executor.records),
                    answers,
                    embeds,
                    searches,
                    lag.between(started, time.time()),
                    gc_pauses.between(started, time.time()),
                    batches,
                ),
                llm_latency=llm_latency,
                cpu={
                    "bot_process": own_end - own_cpu,
                    "weaviate": weaviate_end - weaviate_cpu,
                    "driver_process": driven["driver_cpu_s"],
                },
                loadavg=[load_before, rb.load_average()],
            )
            results.append(result)
            f = result["figures_ms"]
            log(
                f"{name}: e2e p50/p95 {f['e2e'].get('p50')}/{f['e2e'].get('p95')} ms, overhead "
                f"p50/p95 {f['overhead'].get('p50')}/{f['overhead'].get('p95')} ms, "
                f"{result['completed']}/{result['conversations']} done, {result['kinds']}"
            )
    finally:
        gc.callbacks.remove(gc_pauses)
        lag_task.cancel()
        await runner.cleanup()
        await session.close()
        await app.aclose()
        control.shutdown(wait=False)
    return results


# --- the workspace ------------------------------------------------------------------------------


def build_workspace(app: App, target: int) -> dict[str, Any]:
    korquad = rb.load_korquad(quick=False)
    policyqa = rb.load_policyqa(quick=False)
    kb = app.knowledge
    chunker = kb._chunker
    candidates = [
        rb.Doc(f"korquad-{d.id}", d.title, d.text) for d in korquad.workspaces[rb.KORQUAD_WS]
    ]
    policy_of: dict[str, str] = {}
    for name, docs in policyqa.workspaces.items():
        for d in docs:
            doc = rb.Doc(f"{name}-{d.id}", d.title, d.text)
            policy_of[doc.id] = name
            candidates.append(doc)
    chosen: list[rb.Doc] = []
    expected = 0
    with tempfile.TemporaryDirectory(prefix="slack-bench-") as tmp:
        probe = rb.write_jsonl(Path(tmp) / "probe.jsonl", candidates)
        for doc, loaded in zip(candidates, rb.loaded_documents(probe), strict=True):
            if expected >= target:
                break
            chosen.append(doc)
            expected += len(chunker.split(loaded))
        path = rb.write_jsonl(Path(tmp) / "workspace.jsonl", chosen)
        kb.create_workspace(WORKSPACE, [(IdentityKind.SLACK_TEAM, TEAM)])
        log(f"ingesting {len(chosen)} documents, {expected} chunks (takes minutes)")
        start = time.perf_counter()
        report = kb.ingest_jsonl(WORKSPACE, path)
        elapsed = time.perf_counter() - start
    if report.errors:
        raise SystemExit(f"ingest failed: {report.errors[:3]}")
    return {
        "documents": len(chosen),
        "korquad_documents": sum(1 for d in chosen if d.id.startswith("korquad-")),
        "policies": sorted({policy_of[d.id] for d in chosen if d.id in policy_of}),
        "chunk_tokens": CHUNK_TOKENS,
        "overlap_tokens": OVERLAP_TOKENS,
        "chunks_added": report.chunks_added,
        "ingest_s": round(elapsed, 1),
        "built_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def make_settings(data_dir: Path, *, llm_base_url: str, slack_api_url: str) -> Settings:
    for variable in _EXTRA_VARIABLES:
        os.environ.pop(variable, None)
    base = rb.make_settings(data_dir)  # clears the retrieval variables, reads no .env
    return base.model_copy(
        update={
            "chunk_tokens": CHUNK_TOKENS,
            "chunk_overlap_tokens": OVERLAP_TOKENS,
            "llm_model": LLM_MODEL,
            "llm_base_url": llm_base_url,
            "llm_api_key": SecretStr(LLM_KEY),
            "llm_timeout_s": 30.0,
            "slack_bot_token": SecretStr(BOT_TOKEN),
            "slack_signing_secret": SecretStr(SIGNING_SECRET),
            "slack_api_url": slack_api_url,
        }
    )


# --- report -------------------------------------------------------------------------------------


def _cell(stats: Mapping[str, Any], key: str) -> str:
    value = stats.get(key)
    return "" if value is None else f"{value:g}"


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    ws = result["workspace"]
    cfg = result["config"]
    reused = f", reused from {ws['built_utc']}" if ws["reused"] else ""
    lines = [
        f"# Slack bot overhead benchmark {m['date_utc']}{' (--quick)' if cfg['quick'] else ''}",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM; Python "
        f"{m['python']}, Weaviate {m['weaviate']}, commit {m['commit'] or '?'}; load average at "
        f"start {m['loadavg_start']}, at end {result['loadavg_end']}; total "
        f"{result['total_s'] / 60:.1f} min.",
        "",
        f"Setup: stand-in LLM latency {cfg['llm_latency_s']} s per chat completion (no "
        f"streaming delay); Slack API at `{cfg['slack_api_url']}` (simulator, no added "
        f"latency); workspace of {ws['chunks_stored']} chunks ({ws['documents']} documents, "
        f"chunk_tokens={ws['chunk_tokens']}){reused}"
        f"; search_k={cfg['search_k']}, hybrid_alpha={cfg['hybrid_alpha']}, min_relevance="
        f"{cfg['min_relevance']}. Default executor size on this machine: "
        f"{cfg['default_executor_workers']} threads (os.cpu_count()={cfg['cpu_count']}).",
        "",
        "## Event to answer posted (ms)",
        "",
        "overhead = end-to-end minus LLM latency x chat completion requests of the conversation.",
        "",
        "| level | start | executor | n | answered / not found / apology | e2e p50 | e2e p95 | "
        "e2e mean | e2e max | **overhead p50** | **overhead p95** | overhead mean | overhead max "
        "| ack p50 | ack p95 | conv/s |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in result["levels"]:
        f = level["figures_ms"]
        kinds = level["kinds"]
        lines.append(
            f"| {level['name']} | {level['start']} | {level['executor_workers']} | "
            f"{level['completed']}/"
            f"{level['conversations']} | {kinds.get('answered (LLM)', 0)} / "
            f"{kinds.get('not found (no LLM call)', 0)} / {kinds.get('apology', 0)} | "
            f"{_cell(f['e2e'], 'p50')} | {_cell(f['e2e'], 'p95')} | {_cell(f['e2e'], 'mean')} | "
            f"{_cell(f['e2e'], 'max')} | **{_cell(f['overhead'], 'p50')}** | "
            f"**{_cell(f['overhead'], 'p95')}** | {_cell(f['overhead'], 'mean')} | "
            f"{_cell(f['overhead'], 'max')} | {_cell(f['ack'], 'p50')} | "
            f"{_cell(f['ack'], 'p95')} | {level['conversations_per_s']} |"
        )
    lines += [
        "",
        "Start: *staggered* = each of the c workers sends its first event at a random moment "
        "of one answer cycle (arrivals spread out, as with independent users); *burst* = all "
        "start together and, with a fixed LLM latency, stay in phase: every cycle all c "
        "questions arrive within milliseconds (the worst case).",
        "",
        "Target: " + result["verdict"],
        "",
    ]
    lines += [
        "## Where the overhead goes (ms, p50 / p95 / mean)",
        "",
        "The first four rows add up to end-to-end; 'answer' is "
        "`ConversationService.answer` (timed around the call), and the indented rows add up to "
        "it ('of which' rows are parts of the row above). Executor waits: time the "
        "conversation's blocking calls waited for a free thread of the loop's default executor.",
        "",
        "| part | " + " | ".join(level["name"] for level in result["levels"]) + " |",
        "|---|" + "---:|" * len(result["levels"]),
    ]
    parts = [
        ("to_placeholder", "event POST -> placeholder chat.postMessage received"),
        ("placeholder_to_answer_start", "placeholder -> answer starts"),
        ("answer_run", "answer"),
        ("answer_end_to_update", "answer done -> chat.update received"),
        ("e2e", "= end-to-end"),
        ("embed_query", "  answer: query embedding (wall, waits included)"),
        ("embed_lock_wait", "    of which: waiting for the model's lock"),
        ("weaviate_search", "  answer: Weaviate hybrid search"),
        ("llm_server", "  answer: inside the LLM server (latency)"),
        ("answer_executor_wait", "  answer: executor waits (chain, search)"),
        ("answer_other", "  answer: the rest (prompt, LLM client, parsing, thread hops)"),
        ("to_llm_request", "  of which: search done -> LLM request received"),
        ("after_llm_reply", "  of which: LLM reply made -> answer returned"),
        ("executor_wait_before_answer", "executor waits before the answer"),
        ("executor_wait_after_answer", "executor waits after the answer"),
        ("executor_wait", "all executor waits of the conversation"),
        ("ack", "HTTP ack (POST returned 200)"),
        ("overhead_measured_llm", "overhead with the LLM time measured at the server"),
    ]
    for key, label in parts:
        cells = []
        for level in result["levels"]:
            s = level["figures_ms"][key]
            cells.append(f"{_cell(s, 'p50')} / {_cell(s, 'p95')} / {_cell(s, 'mean')}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per conversation: "
        + "; ".join(
            f"{level['name']}: Slack calls {level['counts_per_conversation']['slack_calls']}, "
            f"LLM requests {level['counts_per_conversation']['llm_requests']}, executor tasks "
            f"{level['counts_per_conversation']['executor_tasks']}, other Slack calls in the "
            f"level {level['other_slack_calls'] or '{}'}"
            for level in result["levels"]
        )
        + ".",
        "",
        "Overhead of the conversations that called the LLM only (p50 / p95 ms): "
        + "; ".join(
            f"{level['name']}: {_cell(level['overhead_ms_llm_answers_only'], 'p50')} / "
            f"{_cell(level['overhead_ms_llm_answers_only'], 'p95')}"
            for level in result["levels"]
        )
        + ". By question language (ko / en, p95 ms): "
        + "; ".join(
            f"{level['name']}: {_cell(level['overhead_ms_by_language']['ko'], 'p95')} / "
            f"{_cell(level['overhead_ms_by_language']['en'], 'p95')}"
            for level in result["levels"]
        )
        + ".",
        "",
        "CPU utilisation of the machine's cores during each level (bot process / Weaviate / "
        "driver process): "
        + "; ".join(
            f"{level['name']}: {level['cpu_utilisation']['bot_process']:.0%} / "
            f"{level['cpu_utilisation']['weaviate']:.0%} / "
            f"{level['cpu_utilisation']['driver_process']:.0%}"
            for level in result["levels"]
        )
        + ". CPU ms per conversation (same order): "
        + "; ".join(
            f"{level['name']}: {level['cpu_ms_per_conversation']['bot_process']} / "
            f"{level['cpu_ms_per_conversation']['weaviate']} / "
            f"{level['cpu_ms_per_conversation']['driver_process']}"
            for level in result["levels"]
        )
        + ".",
        "",
        "## The bot's blocking calls in the default executor",
        "",
        "| level | function | calls | wait p50 / p95 ms | run p50 / p95 ms |",
        "|---|---|---:|---:|---:|",
    ]
    for level in result["levels"]:
        for function, row in level["executor"]["per_function"].items():
            lines.append(
                f"| {level['name']} | `{function}` | {row['calls']} | "
                f"{_cell(row['wait'], 'p50')} / {_cell(row['wait'], 'p95')} | "
                f"{_cell(row['run'], 'p50')} / {_cell(row['run'], 'p95')} |"
            )
    lines += [""]
    for level in result["levels"]:
        ex = level["executor"]
        floor = level["executor_floor_mean_e2e_ms"]
        lag = level["loop_lag_ms"]
        lines.append(
            f"- {level['name']}: at most {ex['max_tasks_at_once']} executor tasks "
            f"({level['executor_workers']} threads) and {level['max_answers_at_once']} answers "
            f"ran at once; the answer {'holds' if ex['answer_runs_in_executor'] else 'holds no'} "
            "executor thread; event loop lag (a 5 ms sleep woke late by) p50 / p95 / max "
            f"{_cell(lag, 'p50')} / {_cell(lag, 'p95')} / {_cell(lag, 'max')} ms; garbage "
            f"collections {level['gc']['collections']} ({level['gc']['total_ms']} ms in all), "
            f"of which full {level['gc']['full_collections']} (longest "
            f"{level['gc']['full_max_ms']} ms); the embedding model ran "
            f"{level['embedding_batches']['calls']} query batches, "
            f"{level['embedding_batches']['size_mean']} queries each on average (max "
            f"{level['embedding_batches']['size_max']}), "
            f"{_cell(level['embedding_batches']['ms_per_call'], 'p50')} / "
            f"{_cell(level['embedding_batches']['ms_per_call'], 'p95')} ms p50 / p95 per batch"
            + (
                f"; every answer holds a thread for its whole run (LLM call included), so "
                f"{level['concurrency']} conversations on {level['executor_workers']} threads "
                f"cannot average much less than {level['concurrency']} x mean answer time / "
                f"{level['executor_workers']} = {floor} ms end-to-end in steady state"
                if floor
                else ""
            )
            + f". Load average before/after: {level['loadavg']}."
        )
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in result["notes"]]
    return "\n".join(lines) + "\n"


def verdict(levels: Sequence[Mapping[str, Any]], default_workers: int) -> str:
    parts = []
    for start in ("staggered", "burst"):
        shipped = [
            lv
            for lv in levels
            if lv["concurrency"] == 20
            and lv["executor_workers"] == default_workers
            and lv["start"] == start
        ]
        p95 = shipped[0]["figures_ms"]["overhead"].get("p95") if shipped else None
        if p95 is None:
            continue
        met = p95 < TARGET_P95_OVERHEAD_MS
        parts.append(
            f"p95 overhead at 20 concurrent conversations ({start} start) = {p95:g} ms: "
            f"{'**met**' if met else '**NOT met**'} (< {TARGET_P95_OVERHEAD_MS:g} ms)."
        )
    if not parts:
        return "no 20-conversation level with the default executor completed."
    ack = max(lv["figures_ms"]["ack"].get("max", 0) for lv in levels)
    return " ".join(parts) + (
        f" Slowest HTTP ack of the run: {ack:g} ms "
        f"({'within' if ack < TARGET_ACK_MS else 'OVER'} Slack's 3 s)."
    )


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reuse", action="store_true", help="keep the workspace of a last run")
    parser.add_argument("--quick", action="store_true", help="500 chunks, 20/40 conversations")
    parser.add_argument("--llm-latency", type=float, default=0.5, help="seconds per completion")
    parser.add_argument("--levels", default="1,20", help="concurrency levels (default 1,20)")
    parser.add_argument(
        "--conversations", help="conversations per level, same order (default 100,200)"
    )
    parser.add_argument("--warmup", type=int, default=10, help="warm-up conversations")
    parser.add_argument(
        "--no-burst",
        action="store_true",
        help="skip the level where the highest concurrency starts all at once (in phase)",
    )
    parser.add_argument(
        "--what-if-workers",
        type=int,
        default=64,
        help="also run the highest level with a default executor of this many threads "
        "(diagnosis, not the shipped setup); 0: skip",
    )
    parser.add_argument(
        "--slack-host",
        default="localhost",
        help="host name in the bot's Slack API URL; a name (as slack.com) makes aiohttp "
        "resolve it in the default executor, as in production; 127.0.0.1 skips that",
    )
    parser.add_argument(
        "--llm-nagle",
        action="store_true",
        help="leave Nagle's algorithm on in the chat simulator (adds ~40 ms to about half the "
        "async LLM responses: a simulator artefact); default: TCP_NODELAY",
    )
    parser.add_argument("--chunks", type=int, help="workspace size (10,000; quick 500)")
    parser.add_argument("--data-dir", type=Path, help="data dir (bench/results/data-slack)")
    parser.add_argument("--out", type=Path, help="JSON path (a .md is written beside it)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quick: bool = args.quick
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    out: Path = args.out or RESULTS / f"slack-{today}{'-quick' if quick else ''}.json"
    data_dir: Path = (args.data_dir or RESULTS / f"data-slack{'-quick' if quick else ''}").resolve()
    target: int = args.chunks or (500 if quick else 10_000)
    levels = [int(x) for x in args.levels.split(",")]
    counts = (
        [int(x) for x in args.conversations.split(",")]
        if args.conversations
        else [(20 if quick else 100) if c == 1 else (40 if quick else 200) for c in levels]
    )
    if len(counts) != len(levels):
        raise SystemExit("--conversations needs one number per level")
    machine = rb.machine_info()
    log(f"machine: {machine}")

    marker = data_dir / MARKER
    reuse = args.reuse and marker.exists()
    if args.reuse and not reuse:
        log(f"--reuse: no workspace in {data_dir} yet, building one")
    if not reuse:
        rb.fresh_data_dir(data_dir)

    driver = Driver(llm_latency=args.llm_latency, llm_nodelay=not args.llm_nagle)
    log(f"driver process {driver.pid}: Slack :{driver.slack_port}, LLM {driver.llm_base_url}")
    slack_api_url = f"http://{args.slack_host}:{driver.slack_port}/api/"
    settings = make_settings(
        data_dir, llm_base_url=driver.llm_base_url, slack_api_url=slack_api_url
    )
    app = App(settings)
    notes: list[str] = []
    try:
        if reuse:
            workspace = json.loads(marker.read_text(encoding="utf-8"))
            workspace["reused"] = True
            log(f"reusing the workspace in {data_dir} (built {workspace['built_utc']})")
        else:
            workspace = build_workspace(app, target)
            marker.write_text(json.dumps(workspace, indent=2) + "\n", encoding="utf-8")
            workspace["reused"] = False
        workspace["chunks_stored"] = app.knowledge.chunk_count(WORKSPACE)
        if workspace["chunks_stored"] < target:
            notes.append(f"the workspace holds {workspace['chunks_stored']} chunks, < {target}")
        app.embedder.embed_query("warm-up")  # the model loads outside the timings

        questions = pick_questions(set(workspace["policies"]))
        run_tag = format(int(time.time()) % 36**6, "X")  # ids unique across --reuse runs
        top, top_count = levels[-1], counts[-1]
        starts = 1 if args.no_burst else 2
        extra = (starts if args.what_if_workers else 0) * top_count + (starts - 1) * top_count
        needed = args.warmup + sum(counts) + (extra if top > 1 else 0)
        if needed > len(questions):
            raise SystemExit(f"{needed} conversations asked for, {len(questions)} questions")
        warmup = make_conversations(questions[: args.warmup], prefix="w", run_tag=run_tag, start=0)
        used = args.warmup
        plan: list[Level] = []
        default_workers = default_executor_workers()

        def add_level(name: str, concurrency: int, count: int, workers: int, burst: bool) -> None:
            nonlocal used
            batch = questions[used : used + count]
            prefix = f"l{len(plan)}"
            plan.append(
                Level(
                    name,
                    concurrency,
                    workers,
                    burst,
                    make_conversations(batch, prefix=prefix, run_tag=run_tag, start=used),
                )
            )
            used += count

        for concurrency, count in zip(levels, counts, strict=True):
            add_level(f"{concurrency} at once", concurrency, count, default_workers, False)
        if top > 1 and not args.no_burst:
            add_level(f"{top} at once, burst", top, top_count, default_workers, True)
        if top > 1 and args.what_if_workers:
            name = f"{top} at once, what-if {args.what_if_workers} threads"
            add_level(name, top, top_count, args.what_if_workers, False)
            if not args.no_burst:
                add_level(f"{name}, burst", top, top_count, args.what_if_workers, True)
        results = asyncio.run(
            measure(
                app,
                driver,
                plan,
                warmup=warmup,
                llm_latency=args.llm_latency,
                weaviate_pid=rb.weaviate_pid(data_dir),
                notes=notes,
            )
        )
    finally:
        driver.stop()
        app.close()
        app.embedded_weaviate.stop()

    for level in results:
        if level["failures"]:
            notes.append(f"{level['name']}: {len(level['failures'])} failures, e.g. "
                         f"{level['failures'][:3]}")  # fmt: skip
        if any(k != "200" for k in level["http_status"]):
            notes.append(f"{level['name']}: HTTP statuses {level['http_status']}")
        if level["executor"]["unattributed_tasks"]:
            notes.append(
                f"{level['name']}: {level['executor']['unattributed_tasks']} executor tasks "
                "could not be tied to a conversation; they count in the per-function table only"
            )
    if args.what_if_workers:
        notes.append(
            f"the what-if level replaces the loop's default executor by one with "
            f"{args.what_if_workers} threads (bench-side, no product change), to show how much "
            "of the overhead is waiting for an executor thread"
        )
    notes.append(
        "simulators and load generator run in a separate process (no GIL shared with the bot); "
        "t0 and Slack's received_at are both time.time() on this machine"
    )
    result: dict[str, Any] = {
        "machine": machine,
        "config": {
            "quick": quick,
            "llm_latency_s": args.llm_latency,
            "chunk_delay_s": 0.0,
            "llm_simulator_tcp_nodelay": not args.llm_nagle,
            "slack_api_url": slack_api_url,
            "levels": levels,
            "conversations": counts,
            "warmup": args.warmup,
            "what_if_workers": args.what_if_workers,
            "default_executor_workers": default_executor_workers(),
            "cpu_count": os.cpu_count(),
            "search_k": settings.search_k,
            "hybrid_alpha": settings.hybrid_alpha,
            "min_relevance": settings.min_relevance,
            "embedding_model": settings.resolved_embedding_model,
        },
        "workspace": workspace,
        "levels": results,
        "verdict": verdict(results, default_executor_workers()),
        "notes": notes,
        "loadavg_end": rb.load_average(),
        "total_s": round(time.monotonic() - _STARTED, 1),
    }
    report = render(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(report, encoding="utf-8")
    print(report)
    log(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
