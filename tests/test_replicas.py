"""Three bot replicas (``supportbot run --slack-http``) on shared PostgreSQL and Redis, on a
3-node Weaviate cluster with replication factor 3, lose one replica and one Weaviate node
mid-run and still answer every question exactly once.

The replica is killed (``kill -9``) while it is answering a question: its chat model (a local
stand-in) is slow on that one question, and the kill lands after the replica acked the event,
claimed it and posted its placeholder. Slack never resends an acked event, so the question is
answered by another replica's claim sweeper once the dead replica's lease runs out, once, with
the placeholder removed (bot/claims.py, bot/takeover.py).

Events are sent as Slack sends them: each to a random replica, and one that is not acked
(connection refused, a 5xx, or no answer within Slack's 3 seconds) is sent again to a random
replica with ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason``. The answers are counted in the
Slack simulator, per question thread. The replicas talk to one Weaviate node, as they would to
the load balancer in front of the cluster; the node killed is another one.

Needs real PostgreSQL and Redis (``./dev test`` starts them and exports
SUPPORTBOT_TEST_POSTGRES_URL / SUPPORTBOT_TEST_REDIS_URL): skipped without them, except on CI.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.slack.outbound import PLACEHOLDER
from retrieval.documents import SourceDocument
from retrieval.embeddings import LocalE5Embeddings
from retrieval.workspaces import IdentityKind
from supportbot.app import App
from tests.cluster import FAST_REPAIR, LocalCluster
from tests.conftest import make_settings, reset_postgres
from tests.servers.openai_chat import OpenAIChatSimulator, default_responder, message_text
from tests.servers.slack import SlackSimulator, event_envelope, signed_event_request
from tests.test_cli import cli_env

pytestmark = pytest.mark.slow

SUPPORTBOT = Path(sys.executable).parent / "supportbot"
TEAM = "T9REP"
BOT_USER = "W9REP"
TOKEN = "xoxb-replicas"
SECRET = "replica-signing-secret"
CHANNEL = "C9REP"
QUESTIONS = 12
SLACK_ACK_TIMEOUT_S = 3.0  # Slack retries an event not acked within 3 seconds
SLACK_RETRIES = 3  # and retries it at most three times
KILLED_MID_ANSWER = QUESTIONS // 3  # the question the killed replica is answering
SLOW_ANSWER_S = 8.0  # how long the chat model takes on it (the first time)
CLAIM_LEASE_S = 4.0  # short, so the takeover comes soon (the default is 30 s)


def _services() -> tuple[str, str]:
    postgres = os.environ.get("SUPPORTBOT_TEST_POSTGRES_URL")
    redis = os.environ.get("SUPPORTBOT_TEST_REDIS_URL")
    if not (postgres and redis):
        if os.environ.get("CI"):
            pytest.fail("SUPPORTBOT_TEST_POSTGRES_URL/_REDIS_URL are not set on CI: use ./dev test")
        pytest.skip("no PostgreSQL/Redis (run ./dev test, or set SUPPORTBOT_TEST_*_URL)")
    return postgres, redis


@pytest.fixture(scope="module")
def services() -> tuple[str, str]:
    return _services()


@pytest.fixture(scope="module")
def cluster(
    services: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    nodes = LocalCluster(tmp_path_factory.mktemp("replica-cluster"), nodes=3, env=FAST_REPAIR)
    nodes.start(timeout_s=180)
    yield nodes
    nodes.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Replica:
    """One ``supportbot run --slack-http`` process."""

    def __init__(self, index: int, env: dict[str, str], cwd: Path) -> None:
        self.index = index
        self.port = _free_port()
        self.log = cwd / f"replica-{index}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(SUPPORTBOT), "run", "--slack-http", "--host", "127.0.0.1",
                 "--port", str(self.port)],
                env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def wait_serving(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-2000:]
            try:
                httpx.get(self.url, timeout=1)  # any HTTP answer: it serves
                return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise AssertionError(f"replica {self.index} did not serve within {timeout_s}s")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class SlackSender:
    """Delivers events like Slack's Events API: random replica, retries with Slack's headers."""

    def __init__(self, replicas: list[Replica], rng: random.Random) -> None:
        self._replicas = replicas
        self._rng = rng
        self.attempts: list[tuple[str, int, str]] = []  # (event_id, replica, outcome)

    def deliver(
        self,
        body: dict[str, Any],
        *,
        first: Replica | None = None,
        start_attempt: int = 0,
        reason: str | None = None,
    ) -> bool:
        """True once a replica acked ``body``; ``first``: where the first try goes (else a
        random replica); ``start_attempt``/``reason``: deliver as Slack's n-th retry."""
        for attempt in range(start_attempt, SLACK_RETRIES + 1):
            replica = first if first is not None and attempt == start_attempt else None
            replica = replica or self._rng.choice(self._replicas)
            raw, headers = signed_event_request(
                body, SECRET, retry_num=attempt or None, retry_reason=reason
            )
            try:
                response = httpx.post(
                    replica.url, content=raw, headers=headers, timeout=SLACK_ACK_TIMEOUT_S
                )
            except httpx.TimeoutException:
                reason, outcome = "http_timeout", "timeout"
            except httpx.TransportError:
                reason, outcome = "http_error", "refused"
            else:
                outcome = str(response.status_code)
                if response.status_code < 500:
                    self.attempts.append((body["event_id"], replica.index, outcome))
                    return response.status_code == 200
                reason = "http_error"
            self.attempts.append((body["event_id"], replica.index, outcome))
            time.sleep(0.2 * (attempt + 1))  # Slack waits longer; the order is what matters
        return False


def knowledge() -> list[SourceDocument]:
    return [
        SourceDocument(
            doc_id=f"kb-{i}",
            title=f"Setting {i}",
            text=f"To change setting {i}, open Preferences, then panel {i}, and press Save {i}.",
            source=f"https://help.example.com/setting-{i}",
        )
        for i in range(QUESTIONS)
    ]


class SlowOnce:
    """The stand-in chat model, slow the first time it is asked ``marker`` (the question)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.asked = threading.Event()

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        asked = any(self.marker in message_text(m) for m in messages if m.get("role") == "user")
        if asked and not self.asked.is_set():
            self.asked.set()
            time.sleep(SLOW_ANSWER_S)  # the replica is killed while it waits for this
        return default_responder(messages)


def wait_until(condition: Any, timeout_s: float, what: str) -> float:
    """Poll ``condition`` until true; the seconds it took (AssertionError naming ``what``)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what}: not within {timeout_s}s")
        time.sleep(0.1)
    return time.monotonic() - start


def bot_replies(slack: SlackSimulator, ts: str) -> list[dict[str, Any]]:
    return [
        m
        for m in slack.thread(CHANNEL, ts)
        if m.get("ts") != ts and (m.get("bot_id") or m.get("user") == BOT_USER)
    ]


def test_three_replicas_lose_one_replica_and_one_weaviate_node_and_answer_each_question_once(
    services: tuple[str, str],
    cluster: LocalCluster,
    tmp_path: Path,
    embedder: LocalE5Embeddings,
):
    postgres, redis = services
    reset_postgres(postgres)
    node = "node0"  # the replicas' Weaviate address (in production: the load balancer)
    weaviate = {
        "WEAVIATE_URL": cluster.url(node),
        "WEAVIATE_GRPC_PORT": str(cluster.ports(node).grpc),
        "WEAVIATE_REPLICATION_FACTOR": "3",
    }
    settings = make_settings(
        tmp_path / "setup",
        tmp_path / "unused.db",
        database_url=postgres,
        weaviate_url=weaviate["WEAVIATE_URL"],
        weaviate_grpc_port=int(weaviate["WEAVIATE_GRPC_PORT"]),
        weaviate_replication_factor=3,
    )
    with App(settings, local_embedder=embedder) as app:
        app.knowledge.create_workspace("acme", [(IdentityKind.SLACK_TEAM, TEAM)])
        app.knowledge.upsert_documents("acme", knowledge(), origin="test")

    slow = SlowOnce(f"change setting {KILLED_MID_ANSWER}?")
    with (
        SlackSimulator(ts_start=1_720_000_000) as slack,
        OpenAIChatSimulator(slow, api_key="llm-key") as llm,
    ):
        slack.add_workspace(TEAM, TOKEN, bot_user_id=BOT_USER, bot_id="B9REP")
        slack.add_channel(CHANNEL, name="support", team_id=TEAM)
        replicas = []
        for index in range(3):
            env = cli_env(tmp_path / f"data-{index}", tmp_path / "unused.db")
            env.update(weaviate)
            env.update(
                DATABASE_URL=postgres, REDIS_URL=redis, SLACK_BOT_TOKEN=TOKEN,
                SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack.base_url,
                LLM_BASE_URL=llm.base_url, LLM_MODEL="sim", LLM_API_KEY="llm-key",
                CLAIM_LEASE_S=str(CLAIM_LEASE_S), CLAIM_SWEEP_INTERVAL_S="1",
            )  # fmt: skip
            replicas.append(Replica(index, env, tmp_path))
        try:
            for replica in replicas:
                replica.wait_serving()
            sender = SlackSender(replicas, random.Random(15))
            questions: list[str] = []
            killed_at = 0.0
            for i in range(QUESTIONS):
                if i == KILLED_MID_ANSWER + 1:
                    # replicas[1] acked, claimed and is answering the previous question; its
                    # placeholder shows, and its id is recorded within a second
                    wait_until(slow.asked.is_set, 30, "the slow question reached the model")
                    thread = questions[KILLED_MID_ANSWER]
                    wait_until(lambda t=thread: bot_replies(slack, t), 10, "its placeholder")
                    [placeholder] = bot_replies(slack, thread)
                    assert placeholder["text"] == PLACEHOLDER
                    time.sleep(1.5)
                    replicas[1].kill()  # SIGKILL a bot replica mid-answer: nothing resends it
                    killed_at = time.monotonic()
                    cluster.kill("node2")  # and a Weaviate node
                text = f"<@{BOT_USER}> How do I change setting {i}?"
                question = slack.seed_message(CHANNEL, "U222", text, team=TEAM)
                ts = question["ts"]
                event = {
                    "type": "app_mention", "user": "U222", "text": text, "ts": ts,
                    "event_ts": ts, "channel": CHANNEL, "team": TEAM,
                }  # fmt: skip
                body = event_envelope(
                    event, team_id=TEAM, event_id=f"EvRep{i:03d}", bot_user_id=BOT_USER
                )
                # The slow question goes to the replica to be killed; right after the kill,
                # the dead replica is still in Slack's rotation.
                first = replicas[1] if i in (KILLED_MID_ANSWER, KILLED_MID_ANSWER + 1) else None
                assert sender.deliver(body, first=first), f"question {i}: {sender.attempts}"
                if i % 4 == 3:  # Slack did not see the ack in time: the same event, again
                    assert sender.deliver(body, start_attempt=1, reason="http_timeout")
                questions.append(ts)

            mid_answer = questions[KILLED_MID_ANSWER]
            wait_until(
                lambda: any(m["text"] != PLACEHOLDER for m in bot_replies(slack, mid_answer)),
                60,
                "the question the killed replica was answering",
            )
            taken_over_in = time.monotonic() - killed_at
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and any(
                not bot_replies(slack, ts) for ts in questions
            ):
                time.sleep(0.5)
            time.sleep(3)  # a duplicate from a retry would arrive within this
            counts = {ts: len(bot_replies(slack, ts)) for ts in questions}
            retried = sum(1 for _, _, outcome in sender.attempts if outcome != "200")
            print(
                f"answers per question: {sorted(counts.values())}; non-acked tries: {retried}; "
                f"question killed mid-answer answered {taken_over_in:.1f}s after the kill"
            )
            assert all(n == 1 for n in counts.values()), (counts, sender.attempts)
            # answered by another replica once the lease ran out, the placeholder removed
            assert taken_over_in < CLAIM_LEASE_S + 15
            assert placeholder["ts"] in [c.args["ts"] for c in slack.calls_to("chat.delete")]
            assert not any(
                m["text"] == PLACEHOLDER for ts in questions for m in bot_replies(slack, ts)
            )
            survivors = (replicas[0].log.read_text(), replicas[2].log.read_text())
            assert sum(f"{mid_answer} again (attempt 2)" in log for log in survivors) == 1
            assert retried > 0, "no event met the killed replica: the retry path was not tested"
            for ts in questions:
                assert "Save" in bot_replies(slack, ts)[0].get("text", "") or bot_replies(
                    slack, ts
                )[0].get("blocks"), "an apology instead of an answer"
        finally:
            for replica in replicas:
                replica.stop()
            cluster.start_node("node2")
