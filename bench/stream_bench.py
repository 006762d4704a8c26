"""Streaming benchmark: time to first visible answer text, as the bot's delay over the model's.

Run from the repository root::

    .venv/bin/python bench/stream_bench.py [--reuse] [--quick] [--token-interval 0.03]

The bot is the product's own Slack bot (:func:`supportbot.run.build_slack_bot`, streaming on,
served over HTTP as ``supportbot run --slack-http``), driven like ``slack_bench.py`` drives it
and with its machinery (driver process, conversations, workspace, settings): signed
``app_mention`` events from a separate process that also runs the Slack simulator and a
stand-in chat model (``tests/servers/openai_chat.py``) that streams a three-paragraph answer
one word every ``--token-interval`` seconds after ``--llm-latency`` seconds.

For each conversation the driver notes when the stand-in model sent the answer's first word
(the chunk written to the socket) and when the first answer text became visible in Slack: the
first ``chat.startStream``/``chat.appendStream`` with ``markdown_text`` or, where streaming
is refused, the first ``chat.update`` that replaces the placeholder with answer text. The
**added delay** is the difference: what the bot adds to the model's own time to first token.
Levels: 1 and 20 conversations at once with Slack's streaming methods, then 20 at once with
streaming refused (the ``chat.update`` fallback). See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import retrieval_bench as rb  # bench/ is sys.path[0] when this file runs as a script
import slack_bench as sb
from aiohttp import web
from sqlmodel import Session, select

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))

from bot.slack.outbound import PLACEHOLDER  # noqa: E402
from retrieval.workspaces import IdentityKind, PlatformIdentity, Workspace  # noqa: E402
from supportbot.app import App  # noqa: E402
from supportbot.run import build_discord_bot, build_slack_bot, ready_to_serve  # noqa: E402

RESULTS = REPO / "bench" / "results"
TARGET_P95_ADDED_MS = 300.0
CONVERSATION_TIMEOUT_S = 30.0
CONTROL_BLOCKS = frozenset({"context_actions", "actions"})
log = sb.log

_BODY = (
    "the setting applies to every member of the workspace and takes effect at once, "
    "so nobody has to sign in again; admins can change it later from the same page, "
    "and the change is written to the audit log with the name of whoever made it"
)


def stand_in_answer(question: str) -> str:
    """A cited answer of three paragraphs (about 100 words), the same shape for every question."""
    head = f"Here is what the documentation says about “{question[:60]}” [1]."
    body = _BODY
    return f"{head} {body}.\n\nIn short, {body} [1].\n\nIf that does not help, {body}."


# --- the driver process: Slack simulator, stand-in model, load generator --------------------------


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _blocks(call: Any) -> list[Any]:
    blocks = call.args.get("blocks")
    if isinstance(blocks, str):
        with contextlib.suppress(ValueError):
            blocks = json.loads(blocks)
    return blocks if isinstance(blocks, list) else []


def _simulators() -> tuple[type[Any], type[Any]]:
    from tests.servers.openai_chat import OpenAIChatSimulator
    from tests.servers.slack import SlackCall, SlackSimulator

    class WatchedSlack(SlackSimulator):
        """Per channel: when answer text first became visible, and when the answer was final."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._watch_lock = threading.Lock()
            self._watched: dict[str, dict[str, Any]] = {}

        model: Any = None  # the TimedModel: was the model asked (else "not found" is final)

        def watch(self, channel: str, question: str) -> dict[str, Any]:
            loop = asyncio.get_running_loop()
            watch = {"loop": loop, "first": loop.create_future(), "done": loop.create_future()}
            watch["question"] = question
            with self._watch_lock:
                self._watched[channel] = watch
            return watch

        def _record(self, call: SlackCall) -> None:
            super()._record(call)
            with self._watch_lock:
                watch = self._watched.get(str(call.args.get("channel")))
            if watch is None or not call.ok:
                return
            visible, final = False, False
            if call.method in ("chat.startStream", "chat.appendStream"):
                visible = bool(call.args.get("markdown_text"))
            elif call.method == "chat.update":
                text = str(call.args.get("text") or "")
                visible = bool(text) and text != PLACEHOLDER
                controls = any(b.get("type") in CONTROL_BLOCKS for b in _blocks(call))
                # a found answer's final update has its controls; "not found" is one update
                final = controls or (visible and watch["question"] not in self.model.asked)
            loop = watch["loop"]
            with contextlib.suppress(RuntimeError):  # that run is over (its loop is closed)
                if visible:
                    seen = (call.received_at, call.method)
                    loop.call_soon_threadsafe(_resolve, watch["first"], seen)
                if final:
                    loop.call_soon_threadsafe(_resolve, watch["done"], call.received_at)

    class TimedModel(OpenAIChatSimulator):
        """The chat simulator, noting when each streamed answer's first word was sent."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._local = threading.local()
            self._times_lock = threading.Lock()
            self.first_token: dict[str, float] = {}
            self.last_token: dict[str, float] = {}
            self.asked: set[str] = set()

        def take(self) -> tuple[dict[str, float], dict[str, float], set[str]]:
            with self._times_lock:
                first, last, asked = self.first_token, self.last_token, self.asked
                self.first_token, self.last_token, self.asked = {}, {}, set()
            return first, last, asked

        def _chat(self, handler: Any, record: Any) -> None:
            body = record.body if isinstance(record.body, dict) else {}
            self._local.question = sb.question_of(body.get("messages") or [])
            with self._times_lock:
                self.asked.add(self._local.question)
            super()._chat(handler, record)

        def _stream(self, handler: Any, *args: Any) -> None:
            question, send, seen = self._local.question, handler.send_event, [False]

            def timed(data: str) -> None:
                send(data)
                if data == "[DONE]":
                    return
                choices = json.loads(data).get("choices") or [{}]
                if not (choices[0].get("delta") or {}).get("content"):
                    return
                now = time.time()
                with self._times_lock:
                    if not seen[0]:
                        seen[0] = True
                        self.first_token[question] = now
                    self.last_token[question] = now

            handler.send_event = timed  # this request only: a kept-alive handler serves more
            try:
                super()._stream(handler, *args)
            finally:
                del handler.send_event

    return WatchedSlack, TimedModel


def driver_main(conn: Connection, options: dict[str, Any]) -> None:
    """Entry point of the driver process; answers commands from the bench over ``conn``."""
    from tests.servers import openai_chat

    openai_chat._Handler.disable_nagle_algorithm = True  # see slack_bench.driver_main
    slack_class, model_class = _simulators()
    slack = slack_class(ts_start=options["ts_start"])
    llm = model_class(
        lambda messages: stand_in_answer(sb.question_of(messages)),
        api_key=sb.LLM_KEY,
        latency=options["llm_latency"],
        chunk_delay=options["token_interval"],
    )
    slack.model = llm
    with slack, llm:
        slack.add_workspace(sb.TEAM, sb.BOT_TOKEN, bot_user_id=sb.BOT_USER, bot_id=sb.BOT_ID)
        conn.send({"slack_port": slack.port, "llm_base_url": llm.base_url, "pid": 0})
        while True:
            command = conn.recv()
            if command["cmd"] == "stop":
                break
            slack.refuse_streaming(sb.TEAM, "not_allowed" if command["refuse"] else None)
            slack.clear_calls()
            llm.take()
            outcomes = asyncio.run(_drive(slack, command))
            first, last, asked = llm.take()
            methods = Counter(c.method for c in slack.calls)
            conn.send(
                {
                    "outcomes": outcomes,
                    "first": first,
                    "last": last,
                    "asked": sorted(asked),
                    "calls": methods,
                }
            )
    conn.close()


async def _drive(slack: Any, command: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Post every conversation's event, ``concurrency`` in flight, each waiting for its end."""
    import httpx

    from tests.servers.slack import event_envelope, signed_event_request

    conversations = [sb.Conversation(**c) for c in command["conversations"]]
    pending = list(reversed(conversations))
    outcomes: list[dict[str, Any]] = []

    async with httpx.AsyncClient(timeout=30.0) as client:

        async def one(c: sb.Conversation) -> dict[str, Any]:
            text = f"<@{sb.BOT_USER}> {c.question}"
            slack.seed_message(c.channel, sb.ASKER, text, ts=c.ts)  # a stream replies to it
            event = {
                "type": "app_mention", "user": sb.ASKER, "text": text, "ts": c.ts,
                "channel": c.channel, "event_ts": c.ts, "team": sb.TEAM,
                "client_msg_id": c.event_id,
            }  # fmt: skip
            body = event_envelope(
                event, team_id=sb.TEAM, event_id=c.event_id, bot_user_id=sb.BOT_USER
            )
            raw, headers = signed_event_request(body, sb.SIGNING_SECRET)
            watch = slack.watch(c.channel, c.question)
            t0 = time.time()
            with contextlib.suppress(httpx.HTTPError):
                await client.post(command["bot_url"], content=raw, headers=headers)
            outcome: dict[str, Any] = {"id": c.id, "question": c.question, "t0": t0}
            try:
                outcome["done"] = await asyncio.wait_for(watch["done"], CONVERSATION_TIMEOUT_S)
            except TimeoutError:
                calls = [f"{x.method}:{x.error or 'ok'}" for x in slack.calls
                         if x.args.get("channel") == c.channel]  # fmt: skip
                log(f"no final answer for {c.id} in {CONVERSATION_TIMEOUT_S:.0f} s: {calls}")
            if watch["first"].done():
                outcome["visible"], outcome["visible_by"] = watch["first"].result()
            return outcome

        async def worker(delay: float) -> None:
            await asyncio.sleep(delay)
            while pending:
                outcomes.append(await one(pending.pop()))

        rng = random.Random(int(command["seed"]))
        spread = float(command["stagger_s"])
        delays = [rng.uniform(0, spread) for _ in range(int(command["concurrency"]))]
        await asyncio.gather(*(worker(d) for d in delays))
    return outcomes


# --- Discord: the same conversations against the Discord simulator ----------------------------

DISCORD_TOKEN = "bench-discord-token"
GUILD = "2999999999999999999"
DISCORD_ASKER = "2999999999999999998"
_CHANNEL_BASE = 3_000_000_000_000_000_000
_MESSAGES_PATH = re.compile(r"/channels/(\d+)/messages(?:/\d+)?$")


def discord_channel(index: int) -> str:
    """The Discord channel (a snowflake) of the ``index``-th conversation of the run."""
    return str(_CHANNEL_BASE + index)


def _watched_discord() -> type[Any]:
    from tests.servers.discord import DiscordSimulator

    class Calls(list[Any]):
        """The simulator's call list, telling the simulator of each call as it is recorded."""

        def __init__(self, on_call: Any) -> None:
            super().__init__()
            self._on_call = on_call

        def append(self, call: Any) -> None:
            super().append(call)
            self._on_call(call, time.time())

    class WatchedDiscord(DiscordSimulator):
        """Per channel: the first answer text sent (or edited in), and the final answer."""

        model: Any = None

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._calls = Calls(self._seen)
            self._watched: dict[str, dict[str, Any]] = {}

        def watch(self, channel: str, question: str) -> dict[str, Any]:
            loop = asyncio.get_running_loop()
            watch: dict[str, Any] = {"first": loop.create_future(), "done": loop.create_future()}
            watch["question"] = question
            self._watched[channel] = watch
            return watch

        def _seen(self, call: Any, at: float) -> None:
            match = _MESSAGES_PATH.search(call.path)
            watch = self._watched.get(match.group(1)) if match else None
            body = call.body if isinstance(call.body, dict) else {}
            if watch is None or not call.ok or call.method not in ("POST", "PATCH"):
                return
            visible = bool(body.get("content"))
            if visible:
                _resolve(watch["first"], (at, f"{call.method} message"))
            # a found answer's last part carries its components; "not found" is one message
            if body.get("components") or (visible and watch["question"] not in self.model.asked):
                _resolve(watch["done"], at)

    return WatchedDiscord


def discord_driver_main(conn: Connection, options: dict[str, Any]) -> None:
    """The Discord driver process: the Discord simulator (its own loop, in a thread), the
    stand-in model and the load generator; answers the same commands as :func:`driver_main`."""
    from tests.servers import openai_chat

    openai_chat._Handler.disable_nagle_algorithm = True
    _, model_class = _simulators()
    llm = model_class(
        lambda messages: stand_in_answer(sb.question_of(messages)),
        api_key=sb.LLM_KEY,
        latency=options["llm_latency"],
        chunk_delay=options["token_interval"],
    )
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="discord-sim", daemon=True).start()
    sim = _watched_discord()(token=DISCORD_TOKEN, bucket_limit=options["bucket_limit"])
    sim.model = llm
    sim.add_user(DISCORD_ASKER, "asker")
    channels = [(discord_channel(i), f"q{i}") for i in range(options["channels"])]
    sim.add_guild(GUILD, "Bench", channels=channels, members=[DISCORD_ASKER])
    asyncio.run_coroutine_threadsafe(sim.start(), loop).result(30)
    with llm:
        conn.send({"slack_port": 0, "llm_base_url": llm.base_url, "pid": 0, "api": sim.api_url})
        while True:
            command = conn.recv()
            if command["cmd"] == "stop":
                break
            llm.take()
            sim.clear_calls()
            drive = _drive_discord(sim, command)
            outcomes = asyncio.run_coroutine_threadsafe(drive, loop).result()
            first, last, asked = llm.take()
            methods = Counter(f"{c.method} {c.route}" for c in sim.calls())
            conn.send(
                {"outcomes": outcomes, "first": first, "last": last, "asked": sorted(asked),
                 "calls": methods}
            )  # fmt: skip
    asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(30)


async def _drive_discord(sim: Any, command: Mapping[str, Any]) -> list[dict[str, Any]]:
    pending = list(reversed(command["conversations"]))
    outcomes: list[dict[str, Any]] = []

    async def one(c: Mapping[str, Any]) -> dict[str, Any]:
        message = sim.message_create(c["channel"], DISCORD_ASKER, c["question"], mention_bot=True)
        watch = sim.watch(c["channel"], c["question"])
        t0 = time.time()
        await sim.dispatch("MESSAGE_CREATE", message)
        outcome: dict[str, Any] = {"id": c["id"], "question": c["question"], "t0": t0}
        try:
            outcome["done"] = await asyncio.wait_for(watch["done"], CONVERSATION_TIMEOUT_S)
        except TimeoutError:
            log(f"no final answer for {c['id']} in {CONVERSATION_TIMEOUT_S:.0f} s")
        if watch["first"].done():
            outcome["visible"], outcome["visible_by"] = watch["first"].result()
        return outcome

    async def worker(delay: float) -> None:
        await asyncio.sleep(delay)
        while pending:
            outcomes.append(await one(pending.pop()))

    rng = random.Random(int(command["seed"]))
    spread = float(command["stagger_s"])
    delays = [rng.uniform(0, spread) for _ in range(int(command["concurrency"]))]
    await asyncio.gather(*(worker(d) for d in delays))
    return outcomes


def _map_guild(app: App) -> None:
    """Let the benchmark's workspace answer the simulator's guild too."""
    with Session(app.engine) as session:
        taken = session.exec(
            select(PlatformIdentity).where(PlatformIdentity.external_id == GUILD)
        ).first()
        if taken is None:
            workspace = session.exec(select(Workspace).where(Workspace.name == sb.WORKSPACE)).one()
            session.add(
                PlatformIdentity(
                    kind=IdentityKind.DISCORD_GUILD.value, external_id=GUILD,
                    workspace_id=workspace.id,
                )
            )  # fmt: skip
            session.commit()


async def measure_discord(
    app: App, driver: sb.Driver, plan: Sequence[tuple[str, int, list[dict[str, Any]]]],
    *, warmup: list[dict[str, Any]], stagger_s: float,
) -> list[dict[str, Any]]:  # fmt: skip
    """The Discord bot (``supportbot run``'s, streaming on) against the simulator's gateway."""
    loop = asyncio.get_running_loop()
    ready_to_serve(app)
    bot = build_discord_bot(app)
    task = asyncio.create_task(bot.start(DISCORD_TOKEN))
    await asyncio.wait_for(bot.client.wait_until_ready(), 60)
    control = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-control")

    async def drive(conversations: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
        command = {
            "cmd": "run",
            "concurrency": concurrency,
            "conversations": conversations,
            "stagger_s": 0.0 if concurrency == 1 else stagger_s,
            "seed": len(conversations),
        }
        return await loop.run_in_executor(control, driver.request, command)

    results = []
    try:
        log(f"Discord warm-up: {len(warmup)} conversations, one at a time")
        await drive(warmup, 1)
        for name, concurrency, conversations in plan:
            before = rb.load_average()
            log(f"{name}: {len(conversations)} conversations, {concurrency} at once")
            driven = await drive(conversations, concurrency)
            result = analyse(name, driven, [before, rb.load_average()])
            results.append(result)
            added = result["figures_ms"]["added_delay"]
            log(
                f"{name}: added delay p50/p95 {added.get('p50')}/{added.get('p95')} ms, "
                f"{result['measured']}/{result['conversations']} measured, load {before}"
            )
    finally:
        await bot.close()
        await asyncio.wait({task}, timeout=10)
        await app.aclose()
        control.shutdown(wait=False)
    return results


# --- the bot and the levels ---------------------------------------------------------------------


def analyse(name: str, driven: Mapping[str, Any], loadavg: list[list[float]]) -> dict[str, Any]:
    """Added delay (first visible − model's first word) and the other figures of one level."""
    first, last = driven["first"], driven["last"]
    added, to_visible, finish = [], [], []
    visible_by: Counter[str] = Counter()
    asked = set(driven["asked"])
    unmatched = not_found = 0
    for o in driven["outcomes"]:
        if o["question"] not in asked:
            not_found += 1  # the relevance gate answered "not found": no model, no stream
            continue
        token = first.get(o["question"])
        if token is None or "visible" not in o:
            unmatched += 1
            continue
        added.append(o["visible"] - token)
        to_visible.append(o["visible"] - o["t0"])
        visible_by[o["visible_by"]] += 1
        if "done" in o and o["question"] in last:
            finish.append(o["done"] - last[o["question"]])
    rows = [
        {
            "id": o["id"],
            "t0": o["t0"],
            "first_word": first.get(o["question"]),
            "visible": o.get("visible"),
            "visible_by": o.get("visible_by"),
            "last_word": last.get(o["question"]),
            "final": o.get("done"),
        }
        for o in driven["outcomes"]
    ]
    figures = {
        "added_delay": sb._stats_ms(added),
        "event_to_visible": sb._stats_ms(to_visible),
        "last_word_to_final": sb._stats_ms(finish),
    }
    return {
        "name": name,
        "conversations": len(driven["outcomes"]),
        "measured": len(added),
        "not_found": not_found,
        "unmatched": unmatched,
        "visible_by": dict(visible_by),
        "figures_ms": figures,
        "slack_calls": dict(driven["calls"]),
        "loadavg": loadavg,
        "rows": rows,
    }


async def measure(
    app: App, driver: sb.Driver, plan: Sequence[tuple[str, int, bool, list[sb.Conversation]]],
    *, warmup: list[sb.Conversation], stagger_s: float,
) -> list[dict[str, Any]]:  # fmt: skip
    """Serve the bot over HTTP in this loop (as ``supportbot run --slack-http``) and run
    each level of ``plan``: (name, conversations at once, streaming refused, conversations)."""
    loop = asyncio.get_running_loop()
    ready_to_serve(app)
    session = aiohttp.ClientSession()
    bot = build_slack_bot(app, http=True, session=session)
    port = sb._free_port()
    runner = web.AppRunner(bot.app.web_app(path="/slack/events", port=port))
    await runner.setup()
    await web.TCPSite(runner, host="127.0.0.1", port=port).start()
    control = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-control")

    async def drive(
        conversations: list[sb.Conversation], concurrency: int, refuse: bool
    ) -> dict[str, Any]:
        command = {
            "cmd": "run",
            "bot_url": f"http://127.0.0.1:{port}/slack/events",
            "concurrency": concurrency,
            "refuse": refuse,
            "conversations": [asdict(c) for c in conversations],
            "stagger_s": 0.0 if concurrency == 1 else stagger_s,
            "seed": len(conversations),
        }
        return await loop.run_in_executor(control, driver.request, command)

    results = []
    try:
        log(f"warm-up: {len(warmup)} conversations, one at a time")
        await drive(warmup, 1, False)
        for name, concurrency, refuse, conversations in plan:
            before = rb.load_average()
            log(f"{name}: {len(conversations)} conversations, {concurrency} at once")
            driven = await drive(conversations, concurrency, refuse)
            result = analyse(name, driven, [before, rb.load_average()])
            results.append(result)
            added = result["figures_ms"]["added_delay"]
            log(
                f"{name}: added delay p50/p95 {added.get('p50')}/{added.get('p95')} ms, "
                f"{result['measured']}/{result['conversations']} measured, load {before}"
            )
    finally:
        await runner.cleanup()
        await session.close()
        await app.aclose()
        control.shutdown(wait=False)
    return results


def render(result: Mapping[str, Any]) -> str:
    config = result["config"]
    lines = [
        f"# Streaming: time to first visible text ({result['date']})",
        "",
        f"Machine: {_machine(result['machine'])}. Stand-in model: first word after "
        f"{config['llm_latency_s']} s, then one word every {config['token_interval_s']} s. "
        f"Workspace: {result['workspace'].get('chunks_stored')} chunks.",
        "",
        "| level | measured | shown by | added delay p50 / p95 / max (ms) | event → visible "
        "p50 / p95 (ms) | last word → final p50 / p95 (ms) | load avg (1 min) before → after |",
        "|---|---|---|---|---|---|---|",
    ]
    for level in result["levels"]:
        f = level["figures_ms"]
        a, e, d = f["added_delay"], f["event_to_visible"], f["last_word_to_final"]
        lines.append(
            f"| {level['name']} | {level['measured']}/{level['conversations']} "
            f"({level['not_found']} not found) "
            f"| {', '.join(f'{k} {v}' for k, v in level['visible_by'].items())} "
            f"| {a.get('p50')} / {a.get('p95')} / {a.get('max')} "
            f"| {e.get('p50')} / {e.get('p95')} | {d.get('p50')} / {d.get('p95')} "
            f"| {level['loadavg'][0][0]} → {level['loadavg'][1][0]} |"
        )
    lines += ["", f"Verdict: {result['verdict']}", ""]
    return "\n".join(lines)


def _machine(m: Mapping[str, Any]) -> str:
    omp = ", ".join(f"{k}={v}" for k, v in (m.get("omp_env") or {}).items())
    return (
        f"{m.get('nproc')} CPUs ({m.get('cpu_model')}), {m.get('ram_gib')} GiB, Python "
        f"{m.get('python')}, commit {m.get('commit')}, {m.get('date_utc')}"
        + (f", {omp}" if omp else "")
    )


def verdict(levels: Sequence[Mapping[str, Any]]) -> str:
    top = [lv for lv in levels if "20 at once" in lv["name"]]
    if not top:
        return "no 20-conversation level was run"
    parts = []
    for level in top:
        p95 = level["figures_ms"]["added_delay"].get("p95")
        ok = p95 is not None and p95 < TARGET_P95_ADDED_MS
        parts.append(f"{level['name']}: p95 {p95} ms {'<' if ok else '>='} {TARGET_P95_ADDED_MS:g}")
    return "; ".join(parts)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reuse", action="store_true", help="keep the workspace of a last run")
    parser.add_argument("--quick", action="store_true", help="10/40 conversations per level")
    parser.add_argument("--chunks", type=int, default=2000, help="workspace size (2,000)")
    parser.add_argument("--llm-latency", type=float, default=0.3, help="seconds to first word")
    parser.add_argument(
        "--token-interval", type=float, default=0.03, help="seconds between words (0.03)"
    )
    parser.add_argument("--no-fallback", action="store_true", help="skip the chat.update level")
    parser.add_argument(
        "--discord", action="store_true", help="also the Discord bot (1 and 20 at once)"
    )
    parser.add_argument("--data-dir", type=Path, help="data dir (bench/results/data-stream)")
    parser.add_argument("--out", type=Path, help="JSON path (a .md is written beside it)")
    return parser.parse_args(argv)


def run_discord(
    args: argparse.Namespace,
    data_dir: Path,
    questions: Sequence[tuple[str, str]],
    levels: Sequence[tuple[str, int, int]],
) -> list[dict[str, Any]]:
    """The Discord levels: the same workspace, the guild mapped to it, its own driver."""
    count = 5 + sum(n for _, _, n in levels)
    if count > len(questions):
        raise SystemExit(f"{count} Discord conversations asked for, {len(questions)} questions")
    conversations = [
        {"id": f"d-{i:04d}", "channel": discord_channel(i), "question": question}
        for i, (question, _) in enumerate(questions[:count])
    ]
    driver = sb.Driver(
        llm_latency=args.llm_latency,
        llm_nodelay=True,
        target=discord_driver_main,
        options={"token_interval": args.token_interval, "channels": count, "bucket_limit": 50},
    )
    settings = sb.make_settings(
        data_dir, llm_base_url=driver.llm_base_url, slack_api_url="http://127.0.0.1:9/api/"
    ).model_copy(update={"answer_streaming": True, "discord_api_url": driver.hello["api"]})
    app = App(settings)
    try:
        _map_guild(app)
        app.embedder.embed_query("warm-up")
        plan, used = [], 5
        for name, concurrency, n in levels:
            plan.append((name, concurrency, conversations[used : used + n]))
            used += n
        answer_s = args.llm_latency + 110 * args.token_interval
        return asyncio.run(
            measure_discord(app, driver, plan, warmup=conversations[:5], stagger_s=answer_s)
        )
    finally:
        driver.stop()
        app.close()
        app.embedded_weaviate.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    out: Path = args.out or RESULTS / f"stream-{today}{'-quick' if args.quick else ''}.json"
    data_dir: Path = (args.data_dir or RESULTS / "data-stream").resolve()
    marker = data_dir / sb.MARKER
    reuse = args.reuse and marker.exists()
    if not reuse:
        rb.fresh_data_dir(data_dir)
    one, many = (10, 40) if args.quick else (30, 100)
    driver = sb.Driver(
        llm_latency=args.llm_latency,
        llm_nodelay=True,
        target=driver_main,
        options={"token_interval": args.token_interval},
    )
    settings = sb.make_settings(
        data_dir,
        llm_base_url=driver.llm_base_url,
        slack_api_url=f"http://127.0.0.1:{driver.slack_port}/api/",
    ).model_copy(update={"answer_streaming": True})
    app = App(settings)
    try:
        if reuse:
            workspace = json.loads(marker.read_text(encoding="utf-8"))
        else:
            workspace = sb.build_workspace(app, args.chunks)
            marker.write_text(json.dumps(workspace, indent=2) + "\n", encoding="utf-8")
        workspace["chunks_stored"] = app.knowledge.chunk_count(sb.WORKSPACE)
        app.embedder.embed_query("warm-up")
        questions = sb.pick_questions(set(workspace["policies"]))
        tag = format(int(time.time()) % 36**6, "X")
        levels = [("1 at once", 1, False, one), ("20 at once", 20, False, many)]
        if not args.no_fallback:
            levels.append(("20 at once, streaming refused (chat.update)", 20, True, many))
        used = 5
        warmup = sb.make_conversations(questions[:used], prefix="w", run_tag=tag, start=0)
        plan = []
        for index, (name, concurrency, refuse, count) in enumerate(levels):
            batch = questions[used : used + count]
            conversations = sb.make_conversations(
                batch, prefix=f"l{index}", run_tag=tag, start=used
            )
            plan.append((name, concurrency, refuse, conversations))
            used += count
        answer_s = args.llm_latency + 110 * args.token_interval
        results = asyncio.run(measure(app, driver, plan, warmup=warmup, stagger_s=answer_s))
    finally:
        driver.stop()
        app.close()
        app.embedded_weaviate.stop()
    if args.discord:
        discord_levels = [("Discord, 1 at once", 1, one), ("Discord, 20 at once", 20, many)]
        results += run_discord(args, data_dir, questions[used:], discord_levels)
    result = {
        "date": today,
        "machine": rb.machine_info(),
        "config": {
            "llm_latency_s": args.llm_latency,
            "token_interval_s": args.token_interval,
            "quick": args.quick,
        },
        "workspace": workspace,
        "levels": results,
        "verdict": verdict(results),
        "loadavg_end": rb.load_average(),
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
