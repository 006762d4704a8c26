"""Discord support forums: the "solved" tag found by its meaning, the post's tags kept within
Discord's limit, and, end to end, a post answered and tagged by ✅ and by the button."""

from __future__ import annotations

import discord
import pytest

from bot.discord.forums import MAX_APPLIED_TAGS, solved_tag, tags_with


def tags(*names: str | tuple[str, str]) -> list[discord.ForumTag]:
    built = []
    for n, name in enumerate(names, start=1):
        label, emoji = name if isinstance(name, tuple) else (name, None)
        tag = discord.ForumTag(name=label, emoji=emoji)
        tag.id = n
        built.append(tag)
    return built


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Bug", "Question", "Solved"], "Solved"),
        (["bug", "SOLVED"], "SOLVED"),
        (["✅ Solved"], "✅ Solved"),
        (["Resolved!"], "Resolved!"),
        (["질문", "해결됨"], "해결됨"),
        (["해결"], "해결"),
        (["해결 완료"], "해결 완료"),
        (["Answered", "Idea"], "Answered"),
        (["답변 완료"], "답변 완료"),
        (["Answered", "Solved"], "Solved"),  # the stronger kind wins, wherever it is
        (["✅"], "✅"),
        (["✔️"], "✔️"),
        ([("Done", "✅")], "Done"),
        (["解決済み"], "解決済み"),
    ],
)
def test_the_solved_tag_is_found_by_its_meaning(names: list[str], expected: str):
    found = solved_tag(tags(*names))
    assert found is not None and found.name == expected


@pytest.mark.parametrize(
    "names",
    [
        ["Unsolved", "Bug"],
        ["미해결", "질문"],
        ["Not answered", "Needs answer"],
        ["Solved later?"],
        [("Open", "❌")],
        [],
    ],
)
def test_no_tag_means_solved_when_none_says_so(names: list[str]):
    assert solved_tag(tags(*names)) is None


def test_a_tag_is_added_to_the_posts_tags_within_the_limit():
    assert tags_with([1, 2], 9) == [1, 2, 9]
    assert tags_with([], 9) == [9]
    assert tags_with([1, 9], 9) is None  # already there
    assert tags_with(list(range(MAX_APPLIED_TAGS)), 9) is None  # no room: none dropped
