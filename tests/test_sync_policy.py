"""Pure logic of the sync package: retry policy, request budget, transport, schedules,
the scheduler and the source repository (the latter on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from retrieval.workspaces import WorkspaceRegistry
from sync.credentials import CredentialCipher
from sync.errors import CredentialsError, SourceConfigError, SourceUnavailableError
from sync.http import AuthState, PolicyTransport, RequestStats
from sync.models import SyncSource
from sync.policy import RequestBudget, RetryPolicy, retry_after_seconds
from sync.schedule import parse_schedule
from sync.scheduler import Scheduler
from sync.sources import CheckpointBatch, DocWrite, SourceRepository


class FakeTime:
    """A clock that moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=10.0)
    assert [policy.backoff(n, lambda: 0.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 5.0]
    assert [policy.backoff(n, lambda: 1.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_retry_after_reads_seconds_fractions_and_http_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds({"retry-after": "3"}, now=now.timestamp()) == 3.0
    assert retry_after_seconds({"retry-after": "1.25"}, now=now.timestamp()) == 1.25
    assert retry_after_seconds({"retry-after": later}, now=now.timestamp()) == 30.0
    assert retry_after_seconds({"retry-after": "soon"}, now=now.timestamp()) is None
    assert retry_after_seconds({}, now=now.timestamp()) is None


async def test_request_budget_spaces_requests_and_pauses_for_retry_after() -> None:
    time = FakeTime()
    budget = RequestBudget(2.0, burst=1, clock=time.clock, sleep=time.sleep)
    for _ in range(3):
        await budget.acquire()
    assert time.sleeps == [0.5, 0.5]
    budget.pause(5.0)
    time.sleeps.clear()
    await budget.acquire()
    await budget.acquire()
    assert time.sleeps == [5.0, 0.5]  # the pause, then the usual spacing


def transport(
    responses: list[httpx.Response], time: FakeTime, **kwargs: object
) -> tuple[PolicyTransport, list[httpx.Request], RequestStats]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        # A copy: the transport sets a refreshed token on the same request object.
        seen.append(httpx.Request(request.method, request.url, headers=request.headers))
        return responses.pop(0)

    stats = RequestStats()
    wrapped = PolicyTransport(
        httpx.MockTransport(handler),
        budget=RequestBudget(1000, clock=time.clock, sleep=time.sleep),
        policy=kwargs.pop("policy", RetryPolicy()),  # type: ignore[arg-type]
        stats=stats,
        clock=time.clock,
        sleep=time.sleep,
        rand=lambda: 0.0,
        **kwargs,  # type: ignore[arg-type]
    )
    return wrapped, seen, stats


async def test_transport_waits_retry_after_then_backs_off_on_server_errors() -> None:
    time = FakeTime()
    wrapped, seen, stats = transport(
        [
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(503),
            httpx.Response(502),
            httpx.Response(200, text="ok"),
        ],
        time,
    )
    async with httpx.AsyncClient(transport=wrapped) as client:
        response = await client.get("https://example.test/a")
    assert response.text == "ok" and len(seen) == 4
    assert time.sleeps[0] == 7.0  # exactly the Retry-After
    assert time.sleeps[1:] == [0.25, 0.5]  # then exponential back-off
    assert (stats.requests, stats.retries, stats.rate_limited) == (4, 3, 1)


async def test_transport_gives_up_on_endless_rate_limits_and_persistent_errors() -> None:
    time = FakeTime()
    storm = [httpx.Response(429, headers={"Retry-After": "60"}) for _ in range(5)]
    wrapped, _, _ = transport(storm, time, policy=RetryPolicy(max_rate_limited_s=100))
    async with httpx.AsyncClient(transport=wrapped) as client:
        with pytest.raises(SourceUnavailableError, match="still rate limited"):
            await client.get("https://example.test/a")
    errors = [httpx.Response(500) for _ in range(3)]
    wrapped, seen, _ = transport(errors, time, policy=RetryPolicy(max_attempts=3))
    async with httpx.AsyncClient(transport=wrapped) as client:
        assert (await client.get("https://example.test/a")).status_code == 500
    assert len(seen) == 3


async def test_transport_refreshes_an_expired_token_once() -> None:
    time = FakeTime()
    refreshed: list[str] = []

    async def refresh() -> str:
        refreshed.append("yes")
        return "Bearer new-token"

    auth = AuthState("Bearer old-token", refresh)
    wrapped, seen, _ = transport(
        [httpx.Response(401), httpx.Response(200), httpx.Response(200)], time, auth=auth
    )
    async with httpx.AsyncClient(transport=wrapped) as client:
        await client.get("https://example.test/a")
        await client.get("https://example.test/b")
    assert refreshed == ["yes"]
    assert [r.headers["authorization"] for r in seen] == [
        "Bearer old-token",
        "Bearer new-token",
        "Bearer new-token",
    ]


def test_schedules_intervals_cron_and_manual() -> None:
    moment = datetime(2026, 3, 1, 10, 7, tzinfo=UTC)
    every = parse_schedule("every 15m")
    assert every is not None and every.next_after(moment) == moment + timedelta(minutes=15)
    cron = parse_schedule("*/30 * * * *")
    assert cron is not None and cron.next_after(moment) == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert parse_schedule("manual") is None and parse_schedule(None) is None
    with pytest.raises(SourceConfigError, match="too frequent"):
        parse_schedule("2s")
    with pytest.raises(SourceConfigError, match="invalid schedule"):
        parse_schedule("every tuesday")


def repository(engine: Engine, clock: object = None) -> SourceRepository:
    repo = SourceRepository(engine, cipher=CredentialCipher(b"k" * 32), clock=clock)  # type: ignore[arg-type]
    WorkspaceRegistry(engine).create("acme", embedding_model="m")
    return repo


def test_credentials_are_encrypted_at_rest(engine: Engine) -> None:
    repo = repository(engine)
    repo.add(
        "acme", "notion", kind="notion", config={"pages": []},
        credentials={"token": "secret_abc123"}, schedule="1h", requests_per_second=3,
    )  # fmt: skip
    with Session(engine) as session:
        row = session.exec(select(SyncSource)).one()
    assert row.credentials_encrypted and "secret_abc123" not in row.credentials_encrypted
    assert repo.credentials(repo.get("acme", "notion")) == {"token": "secret_abc123"}
    other = SourceRepository(engine, cipher=CredentialCipher(b"another key"))
    with pytest.raises(CredentialsError, match="SUPPORTBOT_SECRET_KEY changed"):
        other.credentials(other.get("acme", "notion"))


def test_passes_checkpoints_and_unseen_documents(engine: Engine) -> None:
    repo = repository(engine)
    repo.add(
        "acme", "site", kind="web", config={}, credentials=None, schedule=None,
        requests_per_second=3,
    )  # fmt: skip
    source = repo.get("acme", "site")
    number, cursor, resumed = repo.begin_pass(source.id, full=False)
    assert (number, cursor, resumed) == (1, None, False)

    def write(ext: str) -> DocWrite:
        return DocWrite(ext, source.doc_id(ext), "v1", None, None, "h", None)

    repo.checkpoint(
        source.id, 1, CheckpointBatch(written=[write("a"), write("b")]),
        cursor={"page": 1}, save_cursor=True,
    )  # fmt: skip
    # A crash here: the next run resumes the open pass from the saved cursor.
    assert repo.begin_pass(source.id, full=False) == (1, {"page": 1}, True)
    assert repo.unseen(source.id, 1) == []
    repo.close_pass(source.id, 1, [], {"page": 2})
    number, cursor, resumed = repo.begin_pass(source.id, full=False)
    assert (number, cursor, resumed) == (2, {"page": 2}, False)
    repo.checkpoint(source.id, 2, CheckpointBatch(seen=["a"]), cursor=None, save_cursor=False)
    assert repo.unseen(source.id, 2) == [("b", source.doc_id("b"))]
    assert repo.doc_states(source.id, 2)["a"].seen_this_pass
    assert repo.begin_pass(source.id, full=True)[:2] == (3, None)


class RecordingQueue:
    def __init__(self) -> None:
        self.queued: list[tuple[str, str, str]] = []

    async def enqueue(
        self, workspace: str, source: str, *, full: bool = False, trigger: str = "schedule"
    ) -> bool:
        self.queued.append((workspace, source, trigger))
        return True

    async def enqueue_documents(self, *args: object, **kwargs: object) -> bool:
        return True

    async def aclose(self) -> None:
        pass


async def test_scheduler_queues_new_and_due_sources_only(engine: Engine) -> None:
    now = [datetime(2026, 3, 1, 10, 0, tzinfo=UTC)]
    repo = repository(engine, clock=lambda: now[0])
    for name, schedule in (("hourly", "1h"), ("cron", "*/30 * * * *"), ("never", None)):
        repo.add(
            "acme", name, kind="web", config={}, credentials=None, schedule=schedule,
            requests_per_second=3,
        )  # fmt: skip
    queue = RecordingQueue()
    scheduler = Scheduler(repo, queue, clock=lambda: now[0], watch_folders=False)
    assert await scheduler.tick() == [("acme", "cron"), ("acme", "hourly")]
    assert await scheduler.tick() == []
    now[0] += timedelta(minutes=31)
    assert await scheduler.tick() == [("acme", "cron")]
    now[0] += timedelta(minutes=30)
    assert sorted(await scheduler.tick()) == [("acme", "cron"), ("acme", "hourly")]
    assert {t for _, _, t in queue.queued} == {"schedule"}
