"""Which links an answer may carry, and where URLs hide in text.

An answer may link only to the URLs of the sources it cites; every other address is shown as
text that no client makes clickable. Stored URLs are validated when they are stored, and again
here, so a malformed one (``https://x> <!channel> <https://evil|…``) can never become markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from linkify_it import LinkifyIt

# Characters a URL never needs unescaped and that would end or forge platform markup.
_FORBIDDEN = frozenset('<>|"`\\{}^')

# Scheme-ful links and "www." hosts: what the chat clients make clickable. Bare domains
# ("billing.md", "example.com") are not matched: Slack (verbatim text) and Discord leave them.
_LINKIFY = LinkifyIt(options={"fuzzy_email": False, "fuzzy_ip": False})


@dataclass(frozen=True, slots=True)
class UrlMatch:
    """A URL found in text: ``text[start:end]`` is the address as written."""

    start: int
    end: int
    url: str


def safe_url(url: str | None) -> str | None:
    """``url`` normalised if it is a well-formed http(s) URL, else None.

    Normalised: scheme and host lower-case, default port dropped, characters that Markdown or
    mentions could read in path, query and fragment percent-encoded. Rejected: any other scheme,
    no host, whitespace or control characters, and characters that close platform markup.
    """
    if not url or len(url) > 2_048:
        return None
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c in _FORBIDDEN for c in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or parts.username or parts.password:
        return None
    if port is not None and port != (443 if scheme == "https" else 80):
        host = f"{host}:{port}"
    if ":" in (parts.hostname or "") and not host.startswith("["):  # IPv6 literal
        host = f"[{host}]"
    path, query, fragment = (_quote(parts.path or "/"), _quote(parts.query), _quote(parts.fragment))
    return urlunsplit((scheme, host, path, query, fragment))


def _quote(component: str) -> str:
    """Percent-encode what markup could read (``()[]!*@'``); what is encoded stays encoded."""
    return quote(component, safe="/%:=&?~+,;$-._")


def _key(url: str) -> str:
    """What two URLs of one page share: the normalised URL without its fragment."""
    return url.split("#", 1)[0]


class LinkPolicy:
    """The set of URLs an answer may link to: those of its cited sources."""

    def __init__(self, allowed: Iterable[str | None] = ()) -> None:
        self._allowed = {_key(u) for u in map(safe_url, allowed) if u}

    def allows(self, url: str | None) -> str | None:
        """The normalised URL if the answer may link to it, else None."""
        normal = safe_url(url)
        return normal if normal and _key(normal) in self._allowed else None


def find_urls(text: str) -> list[UrlMatch]:
    """Every address in ``text`` that a chat client could turn into a link."""
    if "." not in text and ":" not in text:
        return []
    found = [
        UrlMatch(m.index, m.last_index, m.url)
        for m in _LINKIFY.match(text) or []
        if m.schema or m.raw.lower().startswith("www.")
    ]
    # "www." hosts under a top-level domain linkify-it does not list (.xyz, .example):
    # read as if written with "http://".
    lowered = text.lower()
    start = lowered.find("www.")
    while start != -1:
        before = text[start - 1] if start else " "
        taken = any(f.start <= start < f.end for f in found)
        if not taken and not (before.isalnum() or before in "./@"):
            match = _LINKIFY.match_at_start("http://" + text[start:])
            if match is not None:
                found.append(UrlMatch(start, start + match.last_index - 7, match.url))
        start = lowered.find("www.", start + 4)
    return sorted(found, key=lambda f: f.start)


def shows_other_url(label: str, url: str) -> bool:
    """Whether a link's visible ``label`` looks like an address other than ``url``."""
    key = _key(url).rstrip("/")
    for match in _LINKIFY.match(label) or []:
        shown = safe_url(match.url if match.schema else f"https://{match.raw}")
        if shown is None or _key(shown).rstrip("/") != key:
            return True
    return False
