"""The answer with its sources on each platform, and Slack's grouping into messages.

Shared cases: ``security/source-url-pings-channel/`` (a stored URL holding
``> <!channel> <https://evil…|…``, rendered harmlessly even if it was stored) and
``security/masked-links/`` (a title that closes a Markdown link), with variants.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from bot.formatting import (
    SLACK_MESSAGE_CHARS,
    answer_parts,
    format_answer,
    group_sections,
    render_notice,
    slack_messages,
)
from bot.service import APOLOGY, SETUP_MESSAGE
from retrieval.chain import Answer, Source
from tests.chat_checks import bare_addresses, live_links, pings
from tests.conftest import REPO

CASES = REPO.parent / "shared" / "cases" / "security"
PLATFORMS = ["slack", "discord"]


def _answer(text: str, sources: list[Source]) -> Answer:
    return Answer(text=text, sources=sources, mode="llm", standalone_question="q")


def _case_source(case: str) -> Source:
    [doc] = [json.loads(line) for line in (CASES / case / "kb.jsonl").open(encoding="utf-8")]
    return Source(1, doc["id"], doc.get("url") or doc["id"], doc["title"], doc.get("url"))


HOSTILE_URLS = [
    "https://help.acme.example/refund> <!channel> <https://evil.example/login|Official refund form",
    "https://help.acme.example/a|<!here>",
    "javascript:alert(document.cookie)",
    "https://help.acme.example/x)[@everyone](https://evil.example",
    "https://help.acme.example/\n<@U123>",
    "//evil.example/proto-relative",
    "https://help.acme.example/ok?next=<@&123456789012345678>",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_hostile_stored_url_renders_harmlessly(url: str, platform: str):
    source = Source(1, "refund-form", url, "Refund policy", url)

    text = format_answer(_answer("Refunds take 14 days [1].", [source]), platform)  # type: ignore[arg-type]

    assert pings(text, platform) == [], text
    assert bare_addresses(text, platform) == [], text
    hosts = {urlsplit(u).hostname for u, _ in live_links(text, platform)}
    assert hosts <= {"help.acme.example"}, text  # the document's own host, if any
    assert "Refund policy" in text


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_shared_pinging_source_url_case(platform: str):
    source = _case_source("source-url-pings-channel")
    text = format_answer(_answer("Refunds take 14 days [1].", [source]), platform)  # type: ignore[arg-type]
    assert pings(text, platform) == [] and live_links(text, platform) == []
    assert text.endswith("[1] Refund policy (refund-form)") or "Refund policy" in text


TITLES = [
    "Reset](https://evil.example/login) [Password reset",  # the shared case
    "Reset <https://evil.example|Password reset>",
    "[Password reset](https://evil.example/login)",
    "@everyone Password reset <!channel>",
    "Password reset ](<https://evil.example>)",
    "https://help.acme.example/other-page",
    "**Password** _reset_ ~~x~~ `code` > quote",
    "비밀번호 재설정 <@&123456789012345678>",
]


@pytest.mark.parametrize("title", TITLES)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_title_cannot_break_the_sources_list_or_show_another_address(title: str, platform: str):
    url = "https://help.acme.example/r"
    sources = [Source(1, "r", url, title, url), Source(2, "b", "/kb/b.md", "Billing", None)]

    text = format_answer(_answer("See [1] and [2].", sources), platform)  # type: ignore[arg-type]

    heading = "*Sources*" if platform == "slack" else "**Sources**"
    lines = text.split(heading + "\n")[1].split("\n")
    assert len(lines) == 2 and lines[0].startswith("[1] ") and lines[1] == "[2] Billing (b.md)"
    links = live_links(text, platform)
    assert [u for u, _ in links] == [url]
    [(_, visible)] = links
    assert "evil" not in visible and ("://" not in visible or visible == url)
    assert pings(text, platform) == [] and bare_addresses(text, platform) == []


def test_the_shared_masked_link_title_on_slack():
    source = _case_source("masked-links")
    text = format_answer(_answer("See [1].", [source]), "slack")
    assert text.endswith(
        "[1] Reset](`https://evil.example/login`) [Password reset <https://help.acme.example/r>"
    )


def test_slack_messages_pack_sections_within_the_message_limit():
    fence = "\n".join(f"key_{n:03d}: value   # 설명 {n}" for n in range(100))
    text = "\n\n".join(f"Part {n} [1]:\n\n```yaml\n{fence}\n```" for n in range(12))
    answer = _answer(text, [Source(1, "d", "/kb/d.md", "Config", None)])

    messages = slack_messages(answer)

    sections = [s for m in messages for s in m.sections]
    assert sections == answer_parts(answer, "slack")
    assert len(messages) > 1
    assert all(sum(len(s) for s in m.sections) <= SLACK_MESSAGE_CHARS for m in messages)
    assert all(len(s) <= 3_000 for s in sections)
    assert messages[0].text == "\n\n".join(messages[0].sections)


def test_group_sections_respects_the_block_count_too():
    messages = group_sections(["x"] * 120)
    assert [len(m.sections) for m in messages] == [49, 49, 22]


@pytest.mark.parametrize("notice", [SETUP_MESSAGE, APOLOGY["en"], APOLOGY["ko"]])
@pytest.mark.parametrize("platform", PLATFORMS)
def test_notices_keep_their_code_and_ping_nobody(notice: str, platform: str):
    text = render_notice(notice, platform)  # type: ignore[arg-type]
    assert pings(text, platform) == []
    if "`supportbot ingest`" in notice:
        assert "`supportbot ingest`" in text


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_name_put_into_a_notice_cannot_ping(platform: str):
    text = render_notice("`acme`, @everyone, <@&42>, <!channel> are not workspaces", platform)  # type: ignore[arg-type]
    assert pings(text, platform) == [] and text.startswith("`acme`")


@pytest.mark.parametrize("text", ["", "   \n\n  ", "<!-- -->"])
@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_blank_answer_is_never_an_empty_message(text: str, platform: str):
    for with_sources in (False, True):
        sources = [Source(1, "d", "/kb/d.md", "Doc", None)] if with_sources else []
        parts = answer_parts(_answer(text, sources), platform)  # type: ignore[arg-type]
        assert parts and all(p.strip() for p in parts)
