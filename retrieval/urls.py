"""Document URLs: only well-formed http(s) addresses are stored, in one normal form.

A document's URL is shown under answers as the link of its source, on Slack and Discord. It
comes from whoever wrote a JSONL record, a web page's address or a connector's API, so it can
be anything: ``javascript:`` or ``data:`` links, ``file:`` paths, text that closes Slack's
``<url|label>`` markup and pings a channel (``https://x> <!channel> <https://evil|Official``),
credentials (``https://user:pass@host``), spaces, control or bidirectional characters. Every
path that stores a document goes through :func:`normalise_url` (see
:class:`retrieval.knowledge.KnowledgeBase`): a URL that is not a plain http(s) address is
dropped from its document, which is stored without one, and counted in the run's summary.

The check is parse-then-rebuild with :mod:`urllib.parse`, not a pattern: the URL is split,
each part checked (scheme, host as a DNS name or an IP address, port, no user info), then
written back in one normal form (lowercase scheme and host, IDNA host, no default port, "/" for
an empty path, non-ASCII and unsafe characters percent-encoded). The result contains only
printable ASCII without spaces, quotes, ``<``, ``>``, ``|``, backslashes or backticks, so it
cannot end any markup it is put in.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import quote, urlsplit, urlunsplit

from retrieval.errors import RetrievalError

MAX_URL_LENGTH = 2048
"""Longer addresses are refused: browsers and chat platforms cut them anyway."""

_SCHEMES = {"http": 80, "https": 443}
# Characters that RFC 3986 never allows unencoded and that end or break markup around a URL.
_FORBIDDEN = frozenset(' "<>\\^`{|}')
# DNS labels; "_" is not valid in host names but occurs in real ones, and browsers accept it.
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")
# Kept as they are when re-encoding a part: RFC 3986 unreserved, sub-delims, ":" "@" "/" "?"
# and "%" (existing escapes are kept, not double-encoded).
_SAFE_PATH = "/:@!$&'()*+,;=-._~%"
_SAFE_QUERY = _SAFE_PATH + "?"


class InvalidURLError(RetrievalError):
    """A document URL that is not a well-formed http(s) address; the message says why."""


def normalise_url(raw: str) -> str:
    """The URL in normal form, or :class:`InvalidURLError` saying in a few words what is wrong.

    Accepts ``http`` and ``https`` URLs with a DNS host name (internationalised names are
    IDNA-encoded) or an IP address, an optional port, path, query and fragment. Refuses other
    schemes, user info (``user:pass@``), control, format (zero-width, bidirectional) and space
    characters anywhere, the characters in ``" <>\\^`{|}``, bad ports and hosts, and URLs over
    :data:`MAX_URL_LENGTH` characters.
    """
    url = unicodedata.normalize("NFC", raw.strip())
    if not url:
        raise InvalidURLError("empty URL")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURLError(f"longer than {MAX_URL_LENGTH} characters")
    for ch in url:
        if ch in _FORBIDDEN or unicodedata.category(ch)[0] in "CZ":
            raise InvalidURLError(f"contains {_describe(ch)}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidURLError(f"not a valid URL ({e})") from e
    if port == 0:
        raise InvalidURLError("port 0")
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise InvalidURLError(f"scheme {scheme + ':' if scheme else '(none)'} is not http or https")
    if "@" in parts.netloc:
        raise InvalidURLError("user name or password in the URL")
    host = _host(parts.hostname or "")
    netloc = host if port is None or port == _SCHEMES[scheme] else f"{host}:{port}"
    return urlunsplit(
        (
            scheme,
            netloc,
            quote(parts.path, safe=_SAFE_PATH) or "/",
            quote(parts.query, safe=_SAFE_QUERY),
            quote(parts.fragment, safe=_SAFE_QUERY),
        )
    )


def _host(hostname: str) -> str:
    """The host in normal form: an IP address as written by :mod:`ipaddress`, or IDNA."""
    if not hostname:
        raise InvalidURLError("no host")
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        pass
    else:
        return f"[{address.compressed}]" if address.version == 6 else address.compressed
    name = hostname.rstrip(".")
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
    except UnicodeError as e:
        raise InvalidURLError(f"host {hostname!r} is not a valid domain name") from e
    labels = ascii_name.split(".")
    if not all(_LABEL.match(label) for label in labels) or len(ascii_name) > 253:
        raise InvalidURLError(f"host {hostname!r} is not a valid domain name")
    return ascii_name


def _describe(ch: str) -> str:
    if ch == " ":
        return "a space"
    name = unicodedata.name(ch, "")
    return f"{ch!r}" if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X} {name}".strip()
