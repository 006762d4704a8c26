"""Checks on text as Slack or Discord would read it: what pings, what is a live link.

Written from the platforms' documented syntax, independently of bot/render, so the tests of
the renderer and of both bots judge the output the way the platforms do.
"""

from __future__ import annotations

import re

# Slack: everything special sits in <…>; a mention or broadcast starts with @, !, # or ^.
_SLACK_MARKUP = re.compile(r"<([^<>]*)>")
_SLACK_PING = re.compile(r"<[@!#]|<!subteam|<!channel|<!here|<!everyone")
# Discord: user, role and channel mentions, and the two broadcasts, also parsed by the server.
_DISCORD_PING = re.compile(r"<@[!&]?\d+>|<#\d+>|@everyone|@here", re.IGNORECASE)
_BROADCAST = re.compile(r"@(everyone|here|channel)\b", re.IGNORECASE)
_CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
_CODE_SPAN = re.compile(r"``.+?``|`[^`\n]*`")
_DISCORD_MASKED = re.compile(r"(?<!\\)\[((?:[^\]\\]|\\.)*)\]\(<?(https?://[^\s)>]+)>?\)")
_DISCORD_ANGLE = re.compile(r"(?<!\\)<(https?://[^\s>]+)>")
_BARE_URL = re.compile(r"(?:https?|ftp)://|www\.", re.IGNORECASE)


def outside_code(text: str) -> str:
    """``text`` without its code blocks and code spans (where nothing is a link or a ping)."""
    return _CODE_SPAN.sub(" ", _CODE_BLOCK.sub(" ", text))


def slack_pings(text: str) -> list[str]:
    """What would notify someone in Slack mrkdwn (code included: Slack parses it there too)."""
    found = [m.group(0) for m in _SLACK_PING.finditer(text)]
    return found + [m.group(0) for m in _BROADCAST.finditer(text)]


def discord_pings(text: str) -> list[str]:
    """What Discord's server would read as a mention, code excluded (Discord shows it raw)."""
    return [m.group(0) for m in _DISCORD_PING.finditer(outside_code(text))]


def slack_links(text: str) -> list[tuple[str, str]]:
    """Live links in Slack mrkdwn as (url, visible text)."""
    links = []
    for match in _SLACK_MARKUP.finditer(outside_code(text)):
        url, _, label = match.group(1).partition("|")
        if re.match(r"(?:https?|mailto|ftp):", url):
            links.append((url.replace("&amp;", "&"), label or url))
    return links


def discord_links(text: str) -> list[tuple[str, str]]:
    """Live links in Discord Markdown as (url, visible text): masked, angle-bracketed, bare."""
    prose = outside_code(text)
    links = [(m.group(2), m.group(1)) for m in _DISCORD_MASKED.finditer(prose)]
    rest = _DISCORD_MASKED.sub(" ", prose)
    links += [(m.group(1), m.group(1)) for m in _DISCORD_ANGLE.finditer(rest)]
    rest = _DISCORD_ANGLE.sub(" ", rest)
    links += [(m.group(0), m.group(0)) for m in re.finditer(r"https?://\S+", rest)]
    return links


def live_links(text: str, platform: str) -> list[tuple[str, str]]:
    return slack_links(text) if platform == "slack" else discord_links(text)


def pings(text: str, platform: str) -> list[str]:
    return slack_pings(text) if platform == "slack" else discord_pings(text)


def bare_addresses(text: str, platform: str) -> list[str]:
    """Addresses outside code and outside link markup: a client could make them clickable."""
    prose = outside_code(text)
    if platform == "slack":
        prose = _SLACK_MARKUP.sub(" ", prose)
    else:
        prose = _DISCORD_ANGLE.sub(" ", _DISCORD_MASKED.sub(" ", prose))
    return [m.group(0) for m in _BARE_URL.finditer(prose)]


def fences_balanced(text: str) -> bool:
    """Every ``` that opens a code block is closed in the same text."""
    return sum(1 for line in text.split("\n") if line.lstrip("> ").startswith("```")) % 2 == 0
