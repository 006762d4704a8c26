"""Markdown to Slack mrkdwn and Discord Markdown: code untouched, the rest escaped and safe.

Shared cases: ``slack-code-fence/`` (a fence holding ``# a comment`` and ``**kwargs``) and
``security/masked-links/`` (a link whose label is another URL, an image with a secret), each
with variants of its kind written here.
"""

from __future__ import annotations

import pytest

from bot.render.document import join_lines
from bot.render.links import LinkPolicy, find_urls, safe_url, shows_other_url
from bot.render.markdown import MarkdownRenderer
from tests.chat_checks import bare_addresses, live_links, outside_code, pings
from tests.conftest import REPO

CASES = REPO.parent / "shared" / "cases"
PLATFORMS = ["slack", "discord"]
SOURCE = "https://help.acme.example/r"


def render(markdown: str, platform: str, allowed: tuple[str, ...] = ()) -> str:
    return join_lines(MarkdownRenderer(platform, LinkPolicy(allowed)).render(markdown))  # type: ignore[arg-type]


# --- code stays exactly as written --------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_shared_code_fence_case_keeps_its_code(platform: str):
    answer = (CASES / "slack-code-fence" / "answer.md").read_text(encoding="utf-8")

    text = render(answer, platform)

    assert (
        "```\n# renew every night at 03:00\n0 3 * * * certbot renew --quiet\n"
        "## keep **this** literal\n```"
    ) in text
    assert text.startswith("To renew certificates nightly, add this crontab entry [1]:")


CODE_VARIANTS = [
    # (markdown, code as it must appear on Slack, on Discord)
    ("```python\ndef f(*args, **kwargs):\n    # _private_ ~x~\n    return a<b & c>d\n```",
     "def f(*args, **kwargs):\n    # _private_ ~x~\n    return a&lt;b &amp; c&gt;d",
     "def f(*args, **kwargs):\n    # _private_ ~x~\n    return a<b & c>d"),
    ("~~~\n# heading\n> not a quote\n- not a list\n[x](https://evil.example)\n~~~",
     "# heading\n&gt; not a quote\n- not a list\n[x](https://evil.example)",
     "# heading\n> not a quote\n- not a list\n[x](https://evil.example)"),
    ("    indented **code**\n    <@U123> @everyone",
     "indented **code**\n&lt;@U123&gt; @everyone", "indented **code**\n<@U123> @everyone"),
    ("- item\n\n  ```sh\n  echo \"**$HOME**\"\n  ```",
     'echo "**$HOME**"', 'echo "**$HOME**"'),
    ("```\n\n  leading blank and indent\n\n```", "\n  leading blank and indent\n",
     "\n  leading blank and indent\n"),
]  # fmt: skip


@pytest.mark.parametrize(("markdown", "slack", "discord"), CODE_VARIANTS)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_fenced_and_indented_code_is_left_as_written(
    markdown: str, slack: str, discord: str, platform: str
):
    text = render(markdown, platform)
    expected = slack if platform == "slack" else discord
    assert f"\n{expected}\n```" in text


@pytest.mark.parametrize(
    ("markdown", "slack", "discord"),
    [
        ("Run `**kwargs` and `# not heading`.", "`**kwargs`", "`**kwargs`"),
        ("Use `a<b>&c` here", "`a&lt;b&gt;&amp;c`", "`a<b>&c`"),
        ("Spans ``a `tick` b`` too", "`a ˋtickˋ b`", "``a `tick` b``"),
        ("`<!channel>` and `@here`", "`&lt;!channel&gt;`", "`<!channel>`"),
    ],
)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_inline_code_is_left_as_written(markdown: str, slack: str, discord: str, platform: str):
    assert (slack if platform == "slack" else discord) in render(markdown, platform)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_fence_inside_code_cannot_end_the_block_early(platform: str):
    text = render("````md\n```\ninner\n```\n````\nafter", platform)
    assert text.count("\n```") == 1 + 0 and text.endswith("```\n\nafter")
    assert "inner" in text and "``\u200b`" in text


# --- prose becomes the platform's markup --------------------------------------------------------


def test_slack_mrkdwn_for_headings_emphasis_lists_links_and_quotes():
    markdown = (
        "## Steps\n\n**Yes**: within _14 days_ and ~~never~~ [1].\n\n"
        "1. Open [settings](https://help.acme.example/r)\n2. Save\n   - nested *item*\n\n"
        "> quoted **line**\n> second"
    )
    text = render(markdown, "slack", (SOURCE,))
    assert text == (
        "*Steps*\n\n*Yes*: within _14 days_ and ~never~ [1].\n\n"
        "1. Open <https://help.acme.example/r|settings>\n2. Save\n   ◦ nested _item_\n\n"
        "> quoted *line*\n> second"
    )


def test_discord_markdown_for_the_same_answer():
    markdown = "## Steps\n\n**Yes** [1]\n\n- a [guide](https://help.acme.example/r)\n  - b"
    text = render(markdown, "discord", (SOURCE,))
    assert text == ("**Steps**\n\n**Yes** [1]\n\n- a [guide](<https://help.acme.example/r>)\n  - b")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_korean_text_tables_and_rules(platform: str):
    markdown = (
        "# 환불 안내\n\n| 항목 | 기간 |\n|---|---|\n| 세금계산서 | 7일 |\n| b | 14 |\n\n---\n끝."
    )
    text = render(markdown, platform)
    bold = "*" if platform == "slack" else "**"
    assert text.startswith(f"{bold}환불 안내{bold}\n\n```\n")
    # Wide Hangul takes two columns: the table stays aligned in a monospaced block.
    assert "| 항목       | 기간 |\n|------------|------|\n| 세금계산서 | 7일  |" in text
    assert text.endswith("──────────\n\n끝.")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_long_emphasis_is_marked_word_by_word_and_short_emphasis_whole(platform: str):
    bold = "*" if platform == "slack" else "**"
    long = " ".join(["word"] * 40)
    assert f"{bold}word{bold} {bold}word{bold}" in render(f"**{long}**", platform)
    assert f"{bold}two words{bold}" in render("**two words**", platform)


def test_discord_escapes_what_would_format_and_what_starts_a_block():
    text = render("Use snake\\_case and a\\*b\\*c, pipe || here\n\n\\# not a heading", "discord")
    assert "snake\\_case" in text and "a\\*b\\*c" in text and "\\|\\|" in text
    assert text.endswith("\\# not a heading")
    assert render("1\\. not a list", "discord") == "1\\. not a list"
    assert render("1.5 GB max", "discord") == "1.5 GB max"


def test_slack_escapes_its_three_characters_outside_code():
    assert render("a < b && c > d <b>bold</b>", "slack") == (
        "a &lt; b &amp;&amp; c &gt; d &lt;b&gt;bold&lt;/b&gt;"
    )


# --- no pings ----------------------------------------------------------------------------------

PING_PAYLOADS = [
    "@everyone look", "@here now", "@channel hi", "@Everyone caps", "<!channel>", "<!here>",
    "<!everyone>", "<!subteam^S0123|@support>", "<@U12345>", "<@W999|bob>", "<#C123|general>",
    "<@123456789012345678>", "<@!123456789012345678>", "<@&123456789012345678>",
    "**@everyone**", "[@here](https://help.acme.example/r)", "> @everyone quoted",
    "- <!channel> in a list", "# @here heading", "| <@&1> | @everyone |\n|---|---|\n| a | b |",
    "&lt;!channel&gt;", "<!date^1392734382^{date}|Feb 18>",
]  # fmt: skip


@pytest.mark.parametrize("payload", PING_PAYLOADS)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_no_text_outside_code_can_ping(payload: str, platform: str):
    text = render(f"Before {payload} after [1]", platform, (SOURCE,))
    assert pings(text, platform) == [], text


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_shared_pinging_document_text_pings_nobody(platform: str):
    import json

    [doc] = [
        json.loads(line)
        for line in (CASES / "security" / "source-url-pings-channel" / "kb.jsonl").open()
    ]
    text = render(doc["text"], platform, (SOURCE,))
    assert pings(text, platform) == []
    assert live_links(text, platform) == []
    assert "Tom & Jerry" in text.replace("&amp;", "&")


# --- links -------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_shared_masked_link_case_links_nowhere_and_renders_no_image(platform: str):
    answer = (CASES / "security" / "masked-links" / "answer.md").read_text(encoding="utf-8")

    text = render(answer, platform, (SOURCE,))

    assert live_links(text, platform) == []
    assert bare_addresses(text, platform) == []
    assert "![" not in text and "SECRET" not in outside_code(text)
    assert "https://evil.example/login" in text  # shown, as code: visible but not clickable


LINK_VARIANTS = [
    "[https://help.acme.example/r](https://evil.example/login)",
    "[help.acme.example](https://evil.example/login)",
    "[click](https://evil.example/login)",
    "[click](<https://evil.example/a b>)",
    "<https://evil.example/auto>",
    "see https://evil.example/bare and www.evil.example/w",
    "[ref][1]\n\n[1]: https://evil.example/ref",
    "[x](javascript:alert(1))",
    "[x](//evil.example/proto-relative)",
    "[![badge](https://evil.example/b.png)](https://evil.example/c)",
    "![x](https://evil.example/p.png?q=SECRET)",
    "[mail](mailto:attacker@evil.example)",
    "[https://help.acme.example/r](https://help.acme.example/r?next=https://evil.example)",
]


@pytest.mark.parametrize("markdown", LINK_VARIANTS)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_links_go_only_to_the_cited_sources(markdown: str, platform: str):
    text = render(f"Go: {markdown} [1]", platform, (SOURCE,))
    assert all(url.startswith(SOURCE) for url, _ in live_links(text, platform)), text
    assert bare_addresses(text, platform) == [], text
    assert "![" not in text


@pytest.mark.parametrize(
    ("markdown", "visible"),
    [
        ("[the reset page](https://help.acme.example/r)", "the reset page"),
        ("[https://help.acme.example/other](https://help.acme.example/r)", SOURCE),
        ("[https://evil.example](https://help.acme.example/r#step-2)", SOURCE + "#step-2"),
        ("<https://help.acme.example/r>", SOURCE),
        ("plain https://help.acme.example/r text", SOURCE),
    ],
)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_link_to_a_source_never_shows_another_address(markdown: str, visible: str, platform: str):
    [(url, label)] = live_links(render(markdown, platform, (SOURCE,)), platform)
    assert url.startswith(SOURCE) and label == visible


def test_safe_url_accepts_only_well_formed_http_addresses():
    assert safe_url("HTTPS://Help.Acme.Example:443/a?b=1#c") == "https://help.acme.example/a?b=1#c"
    assert safe_url("http://x.example:8080") == "http://x.example:8080/"
    bad = [
        "https://help.acme.example/refund> <!channel> <https://evil.example/login|Official",
        "javascript:alert(1)", "ftp://x.example/f", "https:///nohost", "https://a b.example/",
        "https://user:pw@x.example/", "https://x.example/\nnext", "", None, "https://x|y.example",
        "https://x.example:99999/",
    ]  # fmt: skip
    assert [safe_url(u) for u in bad] == [None] * len(bad)


def test_addresses_are_found_as_clients_would_link_them():
    urls = [m.url for m in find_urls("a https://x.example/a_(b), www.y.example and z.md")]
    assert urls == ["https://x.example/a_(b)", "http://www.y.example"]
    assert shows_other_url("help.example.com", "https://evil.example/")
    assert not shows_other_url("Refund policy", "https://evil.example/")
