"""`supportbot workspace escalation` and the handoff figures of `supportbot feedback report`,
run as a user runs them (the installed command, a real database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.handoff import HandoffEvent, HandoffReason
from feedback.handoffs import HandoffStore
from supportbot.database import make_engine
from tests.test_cli import Cli, assert_one_error_line, cli_env


@pytest.fixture
def cli(weaviate_data_dir: Path, tmp_path: Path) -> Cli:
    return Cli(cli_env(weaviate_data_dir, tmp_path / "supportbot.db"), tmp_path)


def test_escalation_set_show_replace_and_clear(cli: Cli, ws_name: str) -> None:
    cli.ok("workspace", "create", ws_name)
    empty = cli.ok("workspace", "escalation", ws_name).stdout
    assert "no escalation target" in empty
    done = cli.ok(
        "workspace", "escalation", ws_name,
        "--slack-channel", "C024BE91L", "--slack-channel", "G0PRIVATE1",
        "--slack-usergroup", "S0614TZR7",
        "--discord-channel", "1100000000000000001", "--discord-role", "1100000000000000002",
    ).stdout  # fmt: skip
    assert f"{ws_name} slack: #C024BE91L, #G0PRIVATE1, @S0614TZR7" in done
    assert f"{ws_name} discord: #1100000000000000001, @&1100000000000000002" in done
    # one platform's option replaces only that part; no option shows it
    cli.ok("workspace", "escalation", ws_name, "--slack-usergroup", "S0ONCALL01")
    shown = cli.ok("workspace", "escalation", ws_name).stdout
    assert "#C024BE91L, #G0PRIVATE1, @S0ONCALL01" in shown and "@&1100000000000000002" in shown
    cleared = cli.ok("workspace", "escalation", ws_name, "--clear").stdout
    assert "no escalation target" in cleared
    assert "no escalation target" in cli.ok("workspace", "escalation", ws_name).stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--slack-channel", "#support"], "no Slack channel id"),
        (["--slack-usergroup", "@support-team"], "no Slack user group id"),
        (["--discord-role", "<@&1100000000000000002>"], "no Discord role id"),
        (["--discord-channel", "support"], "no Discord channel id"),
        (["--clear", "--slack-channel", "C024BE91L"], "not both"),
    ],
)
def test_escalation_errors_are_one_line(cli: Cli, ws_name: str, args: list[str], says: str) -> None:
    cli.ok("workspace", "create", ws_name)
    line = assert_one_error_line(cli("workspace", "escalation", ws_name, *args))
    assert says in line


def test_escalation_is_documented_in_help(cli: Cli) -> None:
    shown = cli.ok("workspace", "escalation", "--help").stdout
    for option in ("--slack-channel", "--slack-usergroup", "--discord-channel", "--discord-role",
                   "--clear"):  # fmt: skip
        assert option in shown


def test_report_shows_handoff_count_and_median_wait(cli: Cli, ws_name: str, tmp_path: Path) -> None:
    cli.ok("workspace", "create", ws_name)
    engine = make_engine(f"sqlite:///{(tmp_path / 'supportbot.db').resolve()}")
    now = datetime.now(UTC)
    store = HandoffStore(engine, user_hash=str, clock=lambda: now)
    for n, wait in enumerate((120, 240, 600)):
        opened = store.request(
            ws_name,
            platform="slack",
            team_id="T1",
            channel_id="C1",
            thread_id=f"{n}.1",
            asker_id="slack:T1:U1",
            reason=HandoffReason.ASKED,
            target="@S0614TZR7",
        )
        store.mark(ws_name, opened.id, HandoffEvent.HUMAN_REPLIED, at=now + timedelta(seconds=wait))
    engine.dispose()
    report = cli.json("feedback", "report", "--workspace", ws_name, "--json")
    assert report["handoffs"] == {
        "count": 3,
        "replied": 3,
        "resolved": 0,
        "median_seconds_to_first_human_reply": 240.0,
    }
    table = cli.ok("feedback", "report", "--workspace", ws_name).stdout
    assert "handoffs 3" in table and "median time to first human reply 4m 00s" in table
