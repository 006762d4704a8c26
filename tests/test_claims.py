"""Leased claims (bot/claims.py) and the takeover of a dead replica's question (bot/takeover.py).

The claim rules run on SQLite and PostgreSQL (the ``engine`` fixture; PostgreSQL is what
replicas share): a claim is leased to one holder, a live lease is refused, an expired
unfinished claim is taken over by exactly one racer, a done claim never comes back. The
takeover tests use the real Slack bot against the Slack simulator: a replica that "died"
after posting its placeholder (its claim row and placeholder made as it would have made them)
has its question answered once by the sweeper, or by Slack's retry, with the placeholder gone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.claims import Claim, ClaimStore, Lease, message_from_json, message_json
from bot.message import IncomingMessage
from bot.models import ProcessedDelivery
from bot.slack.app import PLACEHOLDER, SlackBot, slack_web_client
from bot.slack.events import incoming_from_event
from retrieval.documents import SourceDocument
from retrieval.workspaces import IdentityKind
from supportbot.app import App
from supportbot.database import make_engine
from supportbot.run import slack_sweeper
from tests.conftest import make_settings, reset_postgres
from tests.servers.slack import SlackSimulator, event_envelope

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MESSAGE = IncomingMessage(
    platform="slack",
    delivery_id="Ev1",
    team_id="T1",
    channel_id="C1",
    message_id="1700000000.000100",
    user_id="U1",
    text="How do I reset my password? 비밀번호",
    thread_id="1700000000.000100",
    mentions_bot=True,
)
KEY = f"message:{MESSAGE.identity}"


class Clock:
    """A settable clock shared by the stores of one test (the replicas' synchronised clocks)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def stores(engine: Engine, clock: Clock, *holders: str, lease_s: float = 30.0) -> list[ClaimStore]:
    return [ClaimStore(engine, holder=h, lease_s=lease_s, clock=clock) for h in holders]


def row(engine: Engine, key: str = KEY) -> Any:
    with engine.connect() as connection:
        table = ProcessedDelivery.__table__  # type: ignore[attr-defined]
        return connection.execute(select(table).where(table.c.delivery_id == key)).one()


# --- the claim rules ---------------------------------------------------------------------------


def test_a_claim_is_leased_to_one_holder_and_refused_while_the_lease_lives(engine: Engine):
    clock = Clock()
    a, b = stores(engine, clock, "a", "b")

    claim = a.claim("slack", KEY, MESSAGE)
    clock.advance(29)

    assert claim is not None and claim.attempts == 1 and not claim.taken_over
    assert b.claim("slack", KEY, MESSAGE) is None  # a retry, or another replica's copy
    assert a.claim("slack", KEY, MESSAGE) is None  # the holder's own repeat too
    assert b.expired(["slack"]) == []
    stored = row(engine)
    assert stored.holder == "a" and not stored.done and message_from_json(stored.message) == MESSAGE


def test_an_expired_unfinished_claim_is_taken_over_with_its_message_and_placeholder(
    engine: Engine,
):
    clock = Clock()
    a, b = stores(engine, clock, "a", "b")
    claim = a.claim("slack", KEY, MESSAGE)
    assert claim is not None
    assert a.renew(claim, progress_id="1700000000.000200")  # the placeholder it posted
    clock.advance(31)  # a died: no renewal

    assert b.expired(["slack"]) == [claim.id] and b.expired(["discord"]) == []
    taken = b.take_over(claim.id)

    assert taken is not None and taken.attempts == 2 and taken.taken_over
    assert taken.message == MESSAGE and taken.progress_id == "1700000000.000200"
    assert b.take_over(claim.id) is None  # held again, under b's live lease
    assert not a.renew(claim) and not a.finish(claim)  # a, back from a pause, lost it
    assert b.finish(taken)
    stored = row(engine)
    assert stored.done and stored.holder == "b" and stored.message is None  # nothing kept


def test_a_done_claim_is_never_claimed_or_taken_over_again(engine: Engine):
    clock = Clock()
    a, b = stores(engine, clock, "a", "b")
    claim = a.claim("slack", KEY, MESSAGE)
    assert claim is not None and a.finish(claim)
    clock.advance(3600)

    assert b.claim("slack", KEY, MESSAGE) is None
    assert b.expired(["slack"]) == []
    assert b.take_over(claim.id) is None


def test_a_retry_of_an_expired_claim_takes_it_over_up_to_the_attempt_limit(engine: Engine):
    clock = Clock()
    a, b, c, d = stores(engine, clock, "a", "b", "c", "d")
    first = a.claim("slack", KEY, MESSAGE)
    clock.advance(31)
    second = b.claim("slack", KEY, MESSAGE)  # a Slack retry reaching b
    clock.advance(31)
    third = c.claim("slack", KEY, MESSAGE)
    clock.advance(31)

    assert first and second and third
    assert [first.attempts, second.attempts, third.attempts] == [1, 2, 3]
    assert d.claim("slack", KEY, MESSAGE) is None  # three holders died: no fourth by a retry
    given_up = d.take_over(first.id)  # the sweeper takes it, only to give up
    assert given_up is not None and d.exhausted(given_up)


def test_a_permanent_claim_is_done_at_once(engine: Engine):
    clock = Clock()
    a, b = stores(engine, clock, "a", "b")

    assert a.claim_once("slack", "setup:T1") and not b.claim_once("slack", "setup:T1")
    clock.advance(3600)
    assert b.claim("slack", "setup:T1") is None and b.expired(["slack"]) == []


def test_a_message_round_trips_through_its_stored_form():
    full = dataclasses.replace(
        MESSAGE, is_direct=True, in_thread=True, edited=True, bare_text="비밀번호", reply_to="9",
        starts_post=True, parent_channel_id="C0", enterprise_id="E1",
    )  # fmt: skip

    assert message_from_json(message_json(MESSAGE)) == MESSAGE
    assert message_from_json(message_json(full)) == full
    with pytest.raises(ValueError, match="not a stored message"):
        message_from_json('{"platform": "slack"}')
    with pytest.raises(ValueError, match="not a stored message"):
        message_from_json("not json")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One database several engines open (as several replicas do)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'claims.db'}"
        return
    url = os.environ.get("SUPPORTBOT_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("SUPPORTBOT_TEST_POSTGRES_URL is not set on CI: run ./dev test")
        pytest.skip("no PostgreSQL (set SUPPORTBOT_TEST_POSTGRES_URL or run ./dev test)")
    reset_postgres(url)
    yield url
    reset_postgres(url)


def _race(calls: list[Any]) -> list[Any]:
    """Run ``calls`` at once on threads; their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_racing_replicas_one_wins_the_claim_and_one_the_takeover(database_url: str):
    clock = Clock()
    engines = [make_engine(database_url) for _ in range(6)]
    try:
        replicas = [
            ClaimStore(e, holder=f"r{i}", lease_s=30, clock=clock) for i, e in enumerate(engines)
        ]
        for round_ in range(5):
            key = f"{KEY}:{round_}"
            won = _race([lambda r=r, k=key: r.claim("slack", k, MESSAGE) for r in replicas])
            assert sum(c is not None for c in won) == 1, won
            [claim] = [c for c in won if c is not None]
            clock.advance(31)
            taken = _race([lambda r=r, c=claim: r.take_over(c.id) for r in replicas])
            assert sum(t is not None for t in taken) == 1, taken
            retried = _race([lambda r=r, k=key: r.claim("slack", k, MESSAGE) for r in replicas])
            assert retried == [None] * len(replicas)  # held again: nobody else gets it
    finally:
        for e in engines:
            e.dispose()


async def test_a_lease_is_renewed_records_the_placeholder_and_ends_done(engine: Engine):
    store = ClaimStore(engine, holder="a", lease_s=1.5)  # renewed every 0.5 s
    claim = store.claim("slack", KEY, MESSAGE)
    assert claim is not None
    placeholder: list[str | None] = [None]
    leases = []

    async with Lease(store, claim) as lease:
        lease.watch(lambda: placeholder[0])
        placeholder[0] = "1700000000.000200"
        for _ in range(4):  # 2.4 s: longer than the lease, renewed in time
            await asyncio.sleep(0.6)
            leases.append(row(engine).lease_until)
            assert ClaimStore(engine, holder="b", lease_s=1.5).claim("slack", KEY) is None
        assert row(engine).progress_id == "1700000000.000200"

    assert len(set(leases)) > 1  # extended while held
    stored = row(engine)
    assert stored.done and stored.message is None and not lease.lost


async def test_a_cancelled_reply_leaves_its_claim_to_a_takeover(engine: Engine):
    store = ClaimStore(engine, holder="a", lease_s=30)
    claim = store.claim("slack", KEY, MESSAGE)
    assert claim is not None

    async def answering() -> None:
        async with Lease(store, claim):
            await asyncio.sleep(60)

    task = asyncio.create_task(answering())
    await asyncio.sleep(0.1)
    task.cancel()  # the process is stopping
    with pytest.raises(asyncio.CancelledError):
        await task

    assert not row(engine).done


# --- taking over a dead replica's question, on the real Slack bot ------------------------------

TEAM, CHANNEL, BOT_USER, TOKEN = "T7TKO", "C7TKO", "W7TKO", "xoxb-takeover"


@pytest.fixture(scope="module")
def takeover_app(
    weaviate_data_dir: Path, tmp_path_factory: pytest.TempPathFactory, embedder: Any
) -> Iterator[App]:
    folder = tmp_path_factory.mktemp("takeover")
    settings = make_settings(
        weaviate_data_dir, folder / "db.sqlite", claim_lease_s=30.0, claim_sweep_interval_s=1.0
    )
    with App(settings, local_embedder=embedder) as application:
        kb = application.knowledge
        kb.create_workspace("takeover", [(IdentityKind.SLACK_TEAM, TEAM)])
        kb.upsert_documents(
            "takeover",
            [
                SourceDocument(
                    doc_id="reset",
                    title="Resetting your password",
                    text="To reset your password, open Settings, then Security, and press "
                    "Reset password. The link in the email is valid for 24 hours.",
                    source="https://help.example.com/reset",
                )
            ],
            origin="test",
        )
        yield application


_seconds = iter(range(1, 1_000))


@pytest.fixture
def slack() -> Iterator[SlackSimulator]:
    with SlackSimulator(ts_start=1_730_000_000 + 10_000 * next(_seconds)) as sim:
        sim.add_workspace(TEAM, TOKEN, bot_user_id=BOT_USER, bot_id="B7TKO")
        sim.add_channel(CHANNEL, name="support", team_id=TEAM)
        yield sim


def _question(slack: SlackSimulator, text: str) -> tuple[dict[str, Any], IncomingMessage]:
    seeded = slack.seed_message(CHANNEL, "U7", f"<@{BOT_USER}> {text}", team=TEAM)
    event = {
        "type": "app_mention", "user": "U7", "text": seeded["text"], "ts": seeded["ts"],
        "event_ts": seeded["ts"], "channel": CHANNEL, "team": TEAM,
    }  # fmt: skip
    body = event_envelope(event, team_id=TEAM, event_id=f"Ev{seeded['ts']}", bot_user_id=BOT_USER)
    message = incoming_from_event(body, event, bot_user_id=BOT_USER)
    assert message is not None
    return body, message


async def _dead_replica(
    app: App, slack: SlackSimulator, message: IncomingMessage, *, holders: int = 1
) -> str:
    """What a replica leaves when it is killed mid-answer: its claim (past its lease) and the
    placeholder it posted. ``holders``: that many replicas died on it. Returns the placeholder."""
    client = slack_web_client(token=TOKEN, api_url=slack.base_url)
    posted = await client.chat_postMessage(
        channel=CHANNEL, thread_ts=message.message_id, text=PLACEHOLDER
    )
    past = Clock()
    past.now = datetime.now(UTC) - timedelta(minutes=10)
    key = f"message:{message.identity}"
    dead = ClaimStore(app.engine, holder="dead0", lease_s=30, clock=past)
    first = dead.claim("slack", key, message)
    assert first is not None
    claim: Claim | None = first
    for i in range(holders):
        if i:
            dead = ClaimStore(app.engine, holder=f"dead{i}", lease_s=30, clock=past)
            claim = dead.take_over(first.id)
        assert claim is not None
        assert dead.renew(claim, progress_id=str(posted["ts"]))
        past.advance(31)
    return str(posted["ts"])


def _bot_messages(slack: SlackSimulator, message: IncomingMessage) -> list[dict[str, Any]]:
    return [
        m
        for m in slack.thread(CHANNEL, message.message_id)
        if m["ts"] != message.message_id and (m.get("bot_id") or m.get("user") == BOT_USER)
    ]


def _bot(app: App, slack: SlackSimulator) -> SlackBot:
    return SlackBot(
        app.conversations,
        client=slack_web_client(token=TOKEN, api_url=slack.base_url),
        signing_secret="secret",
    )


async def test_the_sweeper_answers_a_dead_replicas_question_once_without_its_placeholder(
    takeover_app: App, slack: SlackSimulator
):
    _, message = _question(slack, "How do I reset my password?")
    placeholder = await _dead_replica(takeover_app, slack, message)
    sweeper = slack_sweeper(takeover_app, _bot(takeover_app, slack))

    assert await sweeper.sweep() == 1
    assert await sweeper.sweep() == 0  # done: not again

    [answer] = _bot_messages(slack, message)
    assert answer["ts"] != placeholder and "Reset password" in answer["text"]
    assert [c.args["ts"] for c in slack.calls_to("chat.delete")] == [placeholder]
    assert row(takeover_app.engine, f"message:{message.identity}").done


async def test_a_slack_retry_of_a_dead_replicas_event_takes_it_over(
    takeover_app: App, slack: SlackSimulator
):
    body, message = _question(slack, "How long is the reset link valid?")
    placeholder = await _dead_replica(takeover_app, slack, message)
    bot = _bot(takeover_app, slack)
    slack_sweeper(takeover_app, bot)  # wires the placeholder removal, as `supportbot run` does
    client = slack_web_client(token=TOKEN, api_url=slack.base_url)
    context = {"bot_user_id": BOT_USER}

    await bot._on_message(body, body["event"], client, context)
    await bot._on_message(body, body["event"], client, context)  # one more retry: done

    [answer] = _bot_messages(slack, message)
    assert answer["ts"] != placeholder and "24 hours" in answer["text"]


async def test_a_question_every_holder_died_on_gets_an_apology_and_is_given_up(
    takeover_app: App, slack: SlackSimulator
):
    _, message = _question(slack, "How do I reset my password again?")
    await _dead_replica(takeover_app, slack, message, holders=3)
    sweeper = slack_sweeper(takeover_app, _bot(takeover_app, slack))

    assert await sweeper.sweep() == 1

    [apology] = _bot_messages(slack, message)
    assert "Sorry" in apology["text"] and sweeper.given_up == 1 and sweeper.resumed == 0
    assert row(takeover_app.engine, f"message:{message.identity}").done


async def test_a_live_claim_is_left_to_its_holder(takeover_app: App, slack: SlackSimulator):
    _, message = _question(slack, "Where is the security page?")
    store = ClaimStore(takeover_app.engine, holder="alive", lease_s=30)
    assert store.claim("slack", f"message:{message.identity}", message) is not None
    sweeper = slack_sweeper(takeover_app, _bot(takeover_app, slack))

    assert await sweeper.sweep() == 0
    assert _bot_messages(slack, message) == []
