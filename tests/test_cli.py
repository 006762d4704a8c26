"""The ``supportbot`` command line, run as real subprocesses against the session's Weaviate.

Scripts call ``search --json`` / ``ask --json`` and read exit codes and stderr, so these tests
run the installed console script exactly as a script would: no TTY, settings only from the
environment, the working directory a fresh folder (so no stray ``.env`` is read). The CLI finds
the test session's running Weaviate through ``SUPPORTBOT_DATA_DIR``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from supportbot.cli import app as cli_app
from tests.servers.openai_chat import OpenAIChatSimulator

SUPPORTBOT = Path(sys.executable).with_name("supportbot")

RESULT_KEYS = {"chunk_id", "doc_id", "source", "title", "text", "score"}
ANSWER_KEYS = {"answer", "sources", "mode"}
SOURCE_KEYS = {"n", "doc_id", "source", "title"}

# Settings the CLI would read from the developer's or CI's environment; each test sets its own.
_SETTING_PREFIXES = ("SUPPORTBOT_", "WEAVIATE_", "EMBEDDING_", "LLM_", "OPENAI_")
_SETTING_NAMES = {
    "DATABASE_URL", "SEARCH_K", "HYBRID_ALPHA", "MIN_RELEVANCE", "CHUNK_TOKENS",
    "CHUNK_OVERLAP_TOKENS", "MAX_FILE_MB",
}  # fmt: skip
# What makes Rich behave differently from a plain pipe (a script reading our output).
_TERMINAL_NAMES = {"COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"}

EN_REFUNDS = """# Refund policy

Customers can request a full refund within 14 days of their first payment from
Settings > Billing > Request refund. The money reaches the original card in 5 to 10 business days.
"""
EN_PASSWORD = """# Resetting your password

On the sign-in page choose "Forgot password", enter your account email and open the reset
link we send you. The link expires after 30 minutes.
"""
KO_SHIPPING = """# 배송 안내

주문은 결제 후 영업일 기준 2일 이내에 출고됩니다. 제주 및 도서산간 지역은 배송에 하루가 더 걸립니다.
"""
KO_ACCOUNT = """# 계정 삭제

계정을 삭제하려면 프로필 > 계정 관리 > 계정 삭제를 누르세요.
삭제된 계정은 30일 후 완전히 지워지며 복구할 수 없습니다.
"""
FAQ_RECORDS = [
    {
        "id": "faq-2fa",
        "title": "Two-factor authentication",
        "text": "Turn on two-factor authentication from Profile > Security > 2FA and scan the QR "
        "code with an authenticator app.",
    },
    {
        "id": "faq-export",
        "title": "데이터 내보내기",
        "text": "설정 > 데이터 > 내보내기에서 모든 대화 기록을 CSV 파일로 내려받을 수 있습니다.",
    },
]


# --- helpers -----------------------------------------------------------------------------------


def cli_env(data_dir: Path, database: Path, **extra: str) -> dict[str, str]:
    """The environment of one CLI run: this test's data dir and database, nothing inherited."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_SETTING_PREFIXES)
        and name not in _SETTING_NAMES
        and name not in _TERMINAL_NAMES
    }
    env.update(
        SUPPORTBOT_DATA_DIR=str(data_dir),
        DATABASE_URL=f"sqlite:///{database.resolve()}",
        SUPPORTBOT_SECRET_KEY="test-secret",
        PYTHONUTF8="1",
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class Cli:
    """Runs ``supportbot`` with one environment and working directory."""

    env: dict[str, str]
    cwd: Path

    def __call__(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SUPPORTBOT), *args],
            env={**self.env, **extra_env},
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=300,
            check=False,
        )

    def ok(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        result = self(*args, **extra_env)
        assert result.returncode == 0, f"supportbot {' '.join(args)} failed:\n{result.stderr}"
        return result

    def json(self, *args: str, **extra_env: str) -> Any:
        return json.loads(self.ok(*args, **extra_env).stdout)


def write(root: Path, relative: str, content: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Non-zero exit, nothing on stdout, exactly one non-empty stderr line starting 'error'."""
    assert result.returncode != 0
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{result.stderr}"
    assert lines[0].startswith("error"), lines[0]
    return lines[0]


# --- fixtures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnowledgeBase:
    cli: Cli
    root: Path
    workspace: str
    folder_ingest: subprocess.CompletedProcess[str]
    jsonl_ingest: subprocess.CompletedProcess[str]

    def doc(self, relative: str) -> str:
        """The doc_id the CLI reports for a file ingested from ``docs/``."""
        return str((self.root / "docs" / relative).resolve())


@pytest.fixture(scope="module")
def kb(
    weaviate_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KnowledgeBase]:
    """One workspace, ingested once through the CLI, that the read-only tests search."""
    root = tmp_path_factory.mktemp("cli-kb")
    write(root, "docs/en/refunds.md", EN_REFUNDS)
    write(root, "docs/en/password.md", EN_PASSWORD)
    write(root, "docs/ko/배송.md", KO_SHIPPING)
    write(root, "docs/ko/계정-삭제.md", KO_ACCOUNT)
    write(root, "faq.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in FAQ_RECORDS))
    cli = Cli(cli_env(weaviate_data_dir, root / "supportbot.db"), root)
    cli.ok("workspace", "create", "kb")
    # Relative paths, as a user types them: doc_id must still be the resolved path.
    folder = cli("ingest", "--workspace", "kb", "docs")
    jsonl = cli("ingest", "--workspace", "kb", "--jsonl", "faq.jsonl")
    yield KnowledgeBase(cli, root, "kb", folder, jsonl)
    cli("workspace", "delete", "kb", "--yes")


@pytest.fixture
def cli(weaviate_data_dir: Path, tmp_path: Path) -> Cli:
    """A CLI with this test's own, empty database."""
    return Cli(cli_env(weaviate_data_dir, tmp_path / "supportbot.db"), tmp_path)


# --- workspaces --------------------------------------------------------------------------------


def test_workspace_create_list_delete(cli: Cli, ws_name: str) -> None:
    cli.ok("workspace", "create", ws_name, "--slack-team", "T0001", "--discord-guild", "4242")

    listed = cli.json("workspace", "list", "--json")["workspaces"]
    assert [w["name"] for w in listed] == [ws_name]
    assert {(i["kind"], i["id"]) for i in listed[0]["identities"]} == {
        ("slack_team", "T0001"),
        ("discord_guild", "4242"),
    }
    assert listed[0]["embedding_model"]
    assert listed[0]["tenant"]

    assert_one_error_line(cli("workspace", "create", ws_name))  # the name is taken

    cli.ok("workspace", "delete", ws_name, "--yes")
    assert cli.json("workspace", "list", "--json") == {"workspaces": []}


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group path under ``command`` (a click group, as typer builds it)."""
    yield prefix
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _command_paths(sub, (*prefix, name))


def test_help_works_on_every_command(cli: Cli) -> None:
    paths = list(_command_paths(typer.main.get_command(cli_app)))
    # The walk must reach the commands scripts rely on, or this test proves nothing.
    assert {
        (),
        ("ingest",),
        ("search",),
        ("ask",),
        ("workspace",),
        ("workspace", "create"),
        ("workspace", "list"),
        ("workspace", "delete"),
    } <= set(paths)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda path: cli(*path, "--help"), paths))

    for path, result in zip(paths, results, strict=True):
        name = " ".join(("supportbot", *path))
        assert result.returncode == 0, f"{name} --help:\n{result.stderr}"
        assert "Usage" in result.stdout, name
        assert result.stderr == "", f"{name} --help:\n{result.stderr}"


# --- ingest and search -------------------------------------------------------------------------


def test_folder_ingest_reports_every_file(kb: KnowledgeBase) -> None:
    assert kb.folder_ingest.returncode == 0, kb.folder_ingest.stderr
    assert "4 documents" in kb.folder_ingest.stderr
    assert "0 skipped" in kb.folder_ingest.stderr
    assert kb.jsonl_ingest.returncode == 0, kb.jsonl_ingest.stderr
    assert "2 documents" in kb.jsonl_ingest.stderr


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("How many days do I have to ask for a refund?", "en/refunds.md"),
        ("I forgot my password, where is the reset link?", "en/password.md"),
        ("배송은 며칠 걸리나요?", "ko/배송.md"),
        ("계정을 삭제하면 복구할 수 있나요?", "ko/계정-삭제.md"),
    ],
)
def test_search_json_finds_the_file(kb: KnowledgeBase, query: str, expected: str) -> None:
    payload = kb.cli.json("search", "--workspace", kb.workspace, "--json", query)

    assert set(payload) == {"results"}
    results = payload["results"]
    assert results
    for result in results:
        assert set(result) == RESULT_KEYS
        assert isinstance(result["score"], float | int)
        assert isinstance(result["text"], str) and result["text"]
    assert results[0]["doc_id"] == kb.doc(expected)
    assert results[0]["source"] == kb.doc(expected)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


def test_search_k_limits_results(kb: KnowledgeBase) -> None:
    payload = kb.cli.json("search", "--workspace", kb.workspace, "--k", "2", "--json", "refund")
    assert len(payload["results"]) == 2
    payload = kb.cli.json("search", "--workspace", kb.workspace, "--k", "1", "--json", "환불")
    assert len(payload["results"]) == 1


@pytest.mark.parametrize(
    ("query", "doc_id", "title"),
    [
        ("How do I turn on two-factor authentication?", "faq-2fa", "Two-factor authentication"),
        ("대화 기록을 CSV로 내려받고 싶어요", "faq-export", "데이터 내보내기"),
    ],
)
def test_jsonl_records_are_found_by_their_id(
    kb: KnowledgeBase, query: str, doc_id: str, title: str
) -> None:
    top = kb.cli.json("search", "--workspace", kb.workspace, "--json", query)["results"][0]
    assert top["doc_id"] == doc_id
    assert top["title"] == title


def test_queries_file_prints_one_line_per_query_in_order(kb: KnowledgeBase) -> None:
    queries = [
        {"id": "q-ko", "query": "배송은 며칠 걸리나요?"},
        {"id": 2, "query": "How many days do I have to ask for a refund?"},
        {"id": "q-2fa", "query": "two-factor authentication authenticator app"},
    ]
    write(
        kb.root,
        "queries.jsonl",
        "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries),
    )

    result = kb.cli.ok(
        "search", "--workspace", kb.workspace, "--k", "3", "--json", "--queries-file",
        "queries.jsonl",
    )  # fmt: skip

    lines = result.stdout.splitlines()
    assert len(lines) == len(queries)
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == [q["id"] for q in queries]
    for record in records:
        assert set(record) == {"id", "results"}
        assert 1 <= len(record["results"]) <= 3
        assert all(set(r) == RESULT_KEYS for r in record["results"])
    assert [r["results"][0]["doc_id"] for r in records] == [
        kb.doc("ko/배송.md"),
        kb.doc("en/refunds.md"),
        "faq-2fa",
    ]


# --- ask ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected", "quoted"),
    [
        ("How many days do I have to ask for a refund?", "en/refunds.md", "within 14 days"),
        ("배송은 며칠 걸리나요?", "ko/배송.md", "영업일 기준 2일"),
    ],
)
def test_ask_json_without_llm_is_extractive(
    kb: KnowledgeBase, question: str, expected: str, quoted: str
) -> None:
    payload = kb.cli.json("ask", "--workspace", kb.workspace, "--json", question)

    assert set(payload) == ANSWER_KEYS
    assert payload["mode"] == "extractive"
    assert quoted in payload["answer"]
    assert payload["sources"]
    assert all(set(s) == SOURCE_KEYS for s in payload["sources"])
    assert [s["n"] for s in payload["sources"]] == list(range(1, len(payload["sources"]) + 1))
    assert payload["sources"][0]["doc_id"] == kb.doc(expected)


def test_ask_json_with_llm_cites_sources(kb: KnowledgeBase) -> None:
    with OpenAIChatSimulator(api_key="test-llm-key") as llm:
        payload = kb.cli.json(
            "ask", "--workspace", kb.workspace, "--json",
            "How many days do I have to ask for a refund?",
            LLM_BASE_URL=llm.base_url, LLM_MODEL="sim-support", LLM_API_KEY="test-llm-key",
        )  # fmt: skip
        chat_requests = llm.chat_requests()

    assert set(payload) == ANSWER_KEYS
    assert payload["mode"] == "llm"
    assert "[1]" in payload["answer"]
    # The simulator answers from context block [1]: the right document went in first.
    assert "within 14 days" in payload["answer"]
    assert payload["sources"][0]["n"] == 1
    assert payload["sources"][0]["doc_id"] == kb.doc("en/refunds.md")
    assert all(set(s) == SOURCE_KEYS for s in payload["sources"])
    assert [r["model"] for r in chat_requests] == ["sim-support"]


# --- bad input ---------------------------------------------------------------------------------


def _bad_queries(root: Path) -> None:
    write(root, "bad-queries.jsonl", '{"id": "q1", "query": "refund"}\nnot json\n')
    write(root, "no-query.jsonl", '{"id": "q1", "text": "refund"}\n')


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            ["search", "--workspace", "nope", "--json", "refund"],
            id="search-unknown-workspace",
        ),
        pytest.param(
            ["ask", "--workspace", "nope", "--json", "refund?"],
            id="ask-unknown-workspace",
        ),
        pytest.param(
            ["search", "--workspace", "kb", "--json", "--queries-file", "missing.jsonl"],
            id="missing-queries-file",
        ),
        pytest.param(
            ["search", "--workspace", "kb", "--json", "--queries-file", "bad-queries.jsonl"],
            id="queries-file-line-not-json",
        ),
        pytest.param(
            ["search", "--workspace", "kb", "--json", "--queries-file", "no-query.jsonl"],
            id="queries-file-line-without-query",
        ),
        pytest.param(["search", "--workspace", "kb", "--json"], id="neither-query-nor-file"),
        pytest.param(
            ["search", "--workspace", "kb", "--json", "--queries-file", "no-query.jsonl", "x"],
            id="both-query-and-file",
        ),
        pytest.param(["search", "--workspace", "kb", "--mode", "fuzzy", "--json", "x"], id="mode"),
        pytest.param(["ingest", "--workspace", "kb"], id="ingest-nothing"),
        pytest.param(["ingest", "--workspace", "kb", "--jsonl", "missing.jsonl"], id="no-jsonl"),
    ],
)
def test_bad_input_is_one_error_line(kb: KnowledgeBase, args: list[str]) -> None:
    _bad_queries(kb.root)
    assert_one_error_line(kb.cli(*args))


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(["search", "--json", "refund"], "--workspace", id="missing-workspace"),
        pytest.param(["ask", "--workspace", "kb", "--json"], "QUESTION", id="missing-question"),
        pytest.param(["search", "--workspace", "kb", "--k", "0", "--json", "x"], "--k", id="k-0"),
        pytest.param(["search", "--workspace", "kb", "--k", "many", "x"], "--k", id="k-text"),
        pytest.param(["serach", "--workspace", "kb", "x"], "serach", id="unknown-command"),
    ],
)
def test_usage_errors_name_the_problem(kb: KnowledgeBase, args: list[str], named: str) -> None:
    result = kb.cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr, result.stderr
    assert named.lower() in result.stderr.lower()
    assert_one_error_line(result)


@pytest.mark.parametrize("args", [[], ["workspace"]], ids=["no-command", "no-subcommand"])
def test_no_command_shows_help_without_traceback(cli: Cli, args: list[str]) -> None:
    result = cli(*args)
    assert "Usage" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr


# --- a folder with a broken file ---------------------------------------------------------------


@dataclass(frozen=True)
class BadIngest:
    cli: Cli
    root: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def bad_ingest(
    weaviate_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BadIngest]:
    root = tmp_path_factory.mktemp("cli-bad-ingest")
    write(root, "docs/broken.txt", b"\x00\x01\x02\xff\xfe\x00 PK\x03\x04 not text \x00\x00")
    write(root, "docs/shipping.md", "# Shipping\n\nWe ship every order within 2 business days.\n")
    cli = Cli(cli_env(weaviate_data_dir, root / "supportbot.db"), root)
    cli.ok("workspace", "create", "bad-ingest")
    yield BadIngest(cli, root, cli("ingest", "--workspace", "bad-ingest", "docs"))
    cli("workspace", "delete", "bad-ingest", "--yes")


def test_bad_file_is_named_and_good_file_still_ingested(bad_ingest: BadIngest) -> None:
    lines = bad_ingest.result.stderr.splitlines()
    assert any(line.startswith("skipped:") and "broken.txt" in line for line in lines), lines
    assert "1 skipped" in " ".join(bad_ingest.result.stderr.split())  # however it is wrapped

    results = bad_ingest.cli.json(
        "search", "--workspace", "bad-ingest", "--json", "how fast do you ship orders?"
    )["results"]
    shipping = str((bad_ingest.root / "docs" / "shipping.md").resolve())
    assert [r["doc_id"] for r in results] == [shipping]


def test_ingest_with_a_skipped_file_exits_1(bad_ingest: BadIngest) -> None:
    assert bad_ingest.result.returncode == 1


def test_ingest_prints_one_line_per_message(bad_ingest: BadIngest) -> None:
    lines = [line for line in bad_ingest.result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("skipped: docs/broken.txt: ")
    assert lines[1].startswith("bad-ingest: ")
    assert lines[1].endswith("1 skipped")
