"""Cutting long answers: every part fits, stands alone, is balanced, and nothing is lost.

Shared case: ``long-fenced-answer/answer.md`` (120 YAML lines in one fence, over 2,000
characters), with variants of its kind written here: several fences, a fence longer than a
part, code lines longer than a part, Korean prose, emoji sequences, links and citations at the
cut points, quotes and lists.
"""

from __future__ import annotations

import re

import pytest
import regex

from bot.formatting import LIMITS, answer_parts, split_message
from bot.render.document import join_lines
from bot.render.links import LinkPolicy
from bot.render.markdown import MarkdownRenderer
from bot.render.split import SplitError, measure, split_lines
from retrieval.chain import Answer, Source
from tests.chat_checks import fences_balanced, live_links
from tests.conftest import REPO

CASES = REPO.parent / "shared" / "cases"
PLATFORMS = ["slack", "discord"]
SOURCE = "https://help.acme.example/r"
_REOPENED = re.compile(r"^```[\w+#.-]*\n", re.MULTILINE)


def parts_of(markdown: str, platform: str, limit: int) -> tuple[str, list[str]]:
    lines = MarkdownRenderer(platform, LinkPolicy([SOURCE])).render(markdown)  # type: ignore[arg-type]
    return join_lines(lines), split_lines(lines, limit)


def words(text: str) -> list[str]:
    """The visible content, without fences and whitespace: what must survive the cut."""
    text = _REOPENED.sub("", text).replace("```", "")
    return text.split()


def assert_good_split(whole: str, parts: list[str], limit: int) -> None:
    assert all(measure(p) <= limit for p in parts), [measure(p) for p in parts]
    assert all(fences_balanced(p) for p in parts)
    assert "".join(words(whole)) == "".join("".join(words(p)) for p in parts)
    if len(parts) > 1:  # balanced: no short tail
        sizes = [measure(p) for p in parts]
        assert min(sizes) >= 0.5 * max(sizes), sizes


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_shared_long_fenced_answer_is_cut_into_valid_balanced_parts(platform: str):
    answer = (CASES / "long-fenced-answer" / "answer.md").read_text(encoding="utf-8")
    limit = LIMITS[platform]  # type: ignore[index]

    whole, parts = parts_of(answer, platform, limit)

    assert len(parts) == (2 if platform == "slack" else 3)
    assert_good_split(whole, parts, limit)
    opener = "```" if platform == "slack" else "```yaml"
    assert all(p.split("\n").count(opener) == (1 if opener != "```" else 2) for p in parts)
    for part in parts[1:]:
        assert part.startswith(opener + "\nsetting_")  # reopened with its language
    assert parts[-1].endswith("Restart the agent after editing the file [1].")
    setting_lines = [line for p in parts for line in p.split("\n") if line.startswith("setting")]
    source = (CASES / "long-fenced-answer" / "answer.md").read_text(encoding="utf-8")
    assert setting_lines == [s for s in source.split("\n") if s.startswith("setting")]


def _yaml(lines: int, tag: str = "") -> str:
    return "\n".join(f"key_{tag}{n:03d}: value   # note {n}" for n in range(lines))


SPLIT_VARIANTS = {
    "several fences": "\n\n".join(
        f"Step {n} [1]:\n\n```bash\n{_yaml(25, str(n))}\n```" for n in range(5)
    ),
    "fence longer than two parts": f"Intro.\n\n```json\n{_yaml(260)}\n```\n\nDone.",
    "code line longer than a part": "```\n" + "x = '" + "a b " * 1_200 + "'\n```",
    "code line without spaces": "```\n" + "0123456789" * 450 + "\n```",
    "korean prose": "\n\n".join(
        "세금계산서는 매월 말일에 발행되며, 환불은 영업일 기준 14일 이내에 처리됩니다 [1]. " * 8
        for _ in range(6)
    ),
    "one korean line without spaces": "가나다라마바사아자차카타파하" * 400,
    "emoji sequences": " ".join(["👨‍👩‍👧‍👦👍🏽🏳️‍🌈🇰🇷"] * 600),
    "emoji without spaces": "👩🏽‍💻" * 900,
    "links at every word": " ".join(f"[guide {n}]({SOURCE}) [1]" for n in range(300)),
    "quotes": "\n".join(
        f"> quoted line {n} with **bold** words and more words" for n in range(120)
    ),
    "nested lists": "\n".join(
        f"- item {n}\n  - nested *{n}* [1]\n    - deeper `code {n}`" for n in range(80)
    ),
    "table": "| a | b |\n|---|---|\n" + "\n".join(f"| 행 {n} | 값 {n} |" for n in range(200)),
    "mentions everywhere": " ".join(["<@U123> @everyone <!channel> <@&42>"] * 200),
    "long bold phrase": "**" + " ".join(["strong"] * 700) + "**",
    "entities": " ".join(["a<b>&c"] * 900),
}


@pytest.mark.parametrize("name", list(SPLIT_VARIANTS))
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("limit", [500, 2_000, 3_000])
def test_split_variants_fit_stand_alone_balance_and_keep_everything(
    name: str, platform: str, limit: int
):
    whole, parts = parts_of(SPLIT_VARIANTS[name], platform, limit)

    assert measure(whole) > limit or len(parts) == 1
    assert_good_split(whole, parts, limit)
    whole_links = live_links(whole, platform)
    assert [link for p in parts for link in live_links(p, platform)] == whole_links
    # Each cut falls on a grapheme boundary of the whole text (no emoji or syllable torn).
    content = "".join(words(whole))
    boundaries = {m.end() for m in regex.finditer(r"\X", content)}
    offset = 0
    for part in parts[:-1]:
        offset += len("".join(words(part)))
        assert offset in boundaries
    for part in parts:  # no part starts or ends inside a grapheme cluster or an entity
        assert not regex.match(r"\p{M}|\u200d|[\U0001F3FB-\U0001F3FF]|\ufe0f", part)
        assert not re.search(r"&(a|am|amp|l|lt|g|gt)?$", part)
        assert not part.endswith("\u200d")
        # every emphasis marker pair is complete in the part
        bold = "*" if platform == "slack" else "**"
        stripped = re.sub(r"```.*?```|`[^`]*`", "", part, flags=re.DOTALL)
        assert stripped.count(bold) % 2 == 0 or "\\*" in stripped


@pytest.mark.parametrize("platform", PLATFORMS)
def test_links_and_citations_near_a_cut_are_never_cut(platform: str):
    for lead in range(78, 112, 2):  # move the link and the citation across the cut point
        markdown = "word " * lead + f"[the reset guide]({SOURCE}) [12] " + "word " * (180 - lead)
        whole, parts = parts_of(markdown, platform, 600)
        assert len(parts) == 2
        assert [link for p in parts for link in live_links(p, platform)] == live_links(
            whole, platform
        )
        assert sum(p.count("[12]") for p in parts) == 1


def test_a_quote_cut_mid_line_repeats_its_marker():
    markdown = "> " + "quoted words " * 400
    _, parts = parts_of(markdown, "discord", 2_000)
    assert len(parts) == 3 and all(p.startswith("> ") for p in parts)


def test_answers_are_cut_with_their_sources_on_both_platforms():
    text = "Here is everything [1].\n\n```yaml\n" + _yaml(150) + "\n```\n\nThat is all [1]."
    answer = Answer(
        text=text,
        sources=[Source(1, "d", "docs/agent.md", "Agent config", SOURCE)],
        mode="llm",
        standalone_question="q",
    )
    for platform in PLATFORMS:
        parts = answer_parts(answer, platform)  # type: ignore[arg-type]
        assert len(parts) > 1 and all(fences_balanced(p) for p in parts)
        assert "Sources" in parts[-1] and "Agent config" in parts[-1]


def test_split_message_reads_fences_back_from_rendered_text():
    text = "Intro\n\n```yaml\n" + _yaml(200) + "\n```\n\nOutro"
    parts = split_message(text, 2_000)
    assert len(parts) == 3 and all(fences_balanced(p) for p in parts)
    assert all(p.startswith("```yaml\n") for p in parts[1:])
    assert_good_split(text, parts, 2_000)
    assert split_message("", 2_000) == [""]
    assert split_message("short", 2_000) == ["short"]


def test_a_limit_too_small_for_a_fence_is_refused():
    with pytest.raises(SplitError, match="too small"):
        split_message("hello", 10)
