"""A web page's main content as Markdown: one extractor for ingested files and synced pages.

The main content is found by trafilatura (menus, headers, footers, sidebars and other page
chrome are left out; headings become ``#`` lines, lists ``-`` items and tables Markdown tables,
the structure the chunker follows). Before trafilatura sees a page, a few kinds of page it
mishandles are put right on the parsed tree:

* hidden elements (``hidden``, ``aria-hidden="true"``, ``display:none``, ``visibility:hidden``)
  and cookie/consent banners are removed: a reader never sees them;
* a ``<form>`` wrapping the whole body (ASP.NET WebForms pages) becomes a plain block, since
  trafilatura drops forms with everything inside them;
* several ``<article>`` elements (an FAQ, a list of entries) are gathered into one, since
  trafilatura keeps only the first.

A page can also be built to break a parser: nested thousands of levels deep, holding hundreds of
thousands of elements, or simply slow to walk (trafilatura's time grows faster than linearly
with some shapes). Each extraction therefore runs in a worker process under
:class:`~retrieval.formats.limits.FileLimits` and the limits below; a page over any of them
raises :class:`~retrieval.errors.BadDocumentError` with its name and the limit, one line, and
the caller goes on with the next page or file. Limits per page:

* input: ``FileLimits.max_bytes`` bytes of HTML;
* nesting: :data:`MAX_DEPTH` levels (libxml2's own limit: deeper trees are cut off silently,
  so a page that reaches it is refused rather than half-read);
* elements: :data:`MAX_ELEMENTS`;
* time: ``FileLimits.max_seconds`` of wall-clock time in the worker (a hard limit: the worker
  is killed and replaced);
* output: ``FileLimits.max_output_chars`` characters and ``FileLimits.max_line_chars`` per line.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import pickle
import re
import select
import subprocess
import sys
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.errors import BadDocumentError
from retrieval.formats.limits import FileLimits

__all__ = [
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "HtmlText",
    "decode_html",
    "extract_main_text",
]

MAX_DEPTH = 255
"""Element nesting levels a page may have (libxml2 stops parsing at 256)."""
MAX_ELEMENTS = 200_000
"""Elements a page may have (a long help page has a few thousand)."""
WORKER_START_S = 120.0
"""Seconds a new worker process may take to start (imports), not counted in a page's time."""

_HIDDEN_STYLE = re.compile(r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden)", re.I)
_CONSENT = re.compile(
    r"cookie|consent|gdpr|\bcmp\b|cmp[-_]|onetrust|didomi|usercentrics|cookiebot|truste", re.I
)
_CHROME_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search"})
_CHROME_TAGS = frozenset(
    {"nav", "footer", "aside", "menu", "template", "dialog", "script", "style", "noscript"}
)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"\s+")
_PREFORMATTED = frozenset({"pre", "code", "textarea"})


@dataclass(frozen=True, slots=True)
class HtmlText:
    """A page's title (``<title>``, else its first ``<h1>``; may be "") and Markdown text."""

    title: str
    text: str


def decode_html(data: bytes, declared: str | None = None) -> str:
    """Decode a page: its BOM, else the charset the server ``declared``, else its own
    ``<meta charset>``, else UTF-8, else cp949 (legacy Korean pages, EUC-KR's superset).

    Never raises: undecodable bytes become U+FFFD rather than losing the page.
    """
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    candidates = [declared]
    found = _META_CHARSET.search(data[:4096])
    if found:
        candidates.append(found.group(1).decode("ascii", "replace"))
    for name in candidates:
        if not name:
            continue
        try:
            encoding = codecs.lookup(name.strip()).name
        except LookupError:
            continue
        if encoding in ("euc_kr", "iso2022_kr", "johab"):
            encoding = "cp949"  # servers say EUC-KR and send cp949's extra syllables
        return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp949")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")


def extract_main_text(html: str, *, name: str, limits: FileLimits | None = None) -> HtmlText:
    """The title and main content of ``html`` as Markdown (NFC).

    ``name`` (a path or URL) starts every error message. Raises :class:`BadDocumentError` for
    a page over a limit (see the module's docstring) or one the parser cannot read; an empty
    ``text`` means the page has no main content (the caller decides what that means).
    """
    limits = limits or FileLimits()
    size = len(html.encode("utf-8", errors="replace"))
    if size > limits.max_bytes:
        raise BadDocumentError(
            f"{name}: page is {size:,} bytes, over the limit of {limits.max_bytes:,} bytes; "
            "split it or leave it out"
        )
    job = (html, MAX_DEPTH, MAX_ELEMENTS, limits.max_output_chars, limits.max_line_chars)
    outcome = _pool().run(job, limits.max_seconds)
    if outcome[0] == "bad":
        raise BadDocumentError(f"{name}: {outcome[1]}")
    return HtmlText(title=outcome[1], text=outcome[2])


# --- the worker's side: parse, check, repair, extract ------------------------------------------


def _extract(
    html: str, max_depth: int, max_elements: int, max_chars: int, max_line: int
) -> tuple[str, ...]:
    """``("ok", title, text)`` or ``("bad", reason)``; runs in a worker process."""
    import lxml.etree
    import lxml.html
    import trafilatura

    parser = lxml.html.HTMLParser(
        remove_comments=True, remove_pis=True, collect_ids=False, no_network=True
    )
    try:
        root = lxml.html.document_fromstring(html, parser=parser)
    except (lxml.etree.ParserError, ValueError) as e:
        if "empty" in str(e).lower():
            return ("ok", "", "")
        return ("bad", f"not readable as HTML ({' '.join(str(e).split())[:200]})")
    for entry in parser.error_log:
        message = " ".join(entry.message.split())
        if "excessive depth" in message.lower():
            return ("bad", f"elements nested over {max_depth} levels deep; leave it out")
        if entry.type_name == "ERR_RESOURCE_LIMIT":  # e.g. a text node too large for libxml2
            return ("bad", f"over the HTML parser's limits ({message[:120]}); leave it out")
    depth, elements = _shape(root)
    if depth > max_depth:
        return ("bad", f"elements nested {depth} levels deep, over the limit of {max_depth}")
    if elements > max_elements:
        return ("bad", f"{elements:,} elements, over the limit of {max_elements:,}")
    title = _title(root)
    _remove_unseen(root)
    _normalise_whitespace(root)
    _unwrap_forms(root)
    _gather_articles(root)
    _frame_body(root)
    text = trafilatura.extract(
        root,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        include_images=False,
        include_links=False,
        deduplicate=False,
        config=_config(),
    )
    text = _tidy(text or "")
    if len(text) > max_chars:
        return ("bad", f"extracted text is over the limit of {max_chars:,} characters")
    longest = max((len(line) for line in text.split("\n")), default=0)
    if longest > max_line:
        return ("bad", f"a line of {longest:,} characters, over the limit of {max_line:,}")
    return ("ok", title, text)


def _shape(root: Any) -> tuple[int, int]:
    """(deepest nesting, element count), without recursion."""
    deepest, count = 0, 0
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in element)
    return deepest, count


def _title(root: Any) -> str:
    for found in (root.find(".//title"), root.find(".//h1")):
        if found is not None:
            title = " ".join(found.text_content().split())
            if title:
                return unicodedata.normalize("NFC", title)
    return ""


def _remove_unseen(root: Any) -> None:
    """Drop what a reader never sees or reads as content: hidden elements, consent banners,
    menus, sidebars, footers, a site header (a header inside the content stays) and elements
    whose ARIA role says they are navigation or page chrome. trafilatura drops most of these
    too, but its last-resort fallback on a page with little text would not."""
    doomed = []
    for element in root.iter():
        if not isinstance(element.tag, str) or element.tag in ("html", "body"):
            continue
        attributes = element.attrib
        marks = " ".join(
            attributes.get(key, "") for key in ("id", "class", "aria-label", "data-nosnippet")
        )
        if (
            "hidden" in attributes
            or attributes.get("aria-hidden", "").strip().lower() == "true"
            or _HIDDEN_STYLE.search(attributes.get("style", ""))
            or attributes.get("role", "").strip().lower() in _CHROME_ROLES
            or element.tag in _CHROME_TAGS
            or (element.tag == "header" and not _in_content(element))
            or (element.tag == "input" and attributes.get("type", "").lower() == "hidden")
            or _CONSENT.search(marks)
        ):
            doomed.append(element)
    for element in doomed:
        parent = element.getparent()
        if parent is None:
            continue
        _keep_tail(element)
        parent.remove(element)


def _in_content(element: Any) -> bool:
    return any(a.tag in ("main", "article") for a in element.iterancestors())


def _keep_tail(element: Any) -> None:
    """Move an element's tail text (which belongs to its parent) before removing it."""
    if not element.tail:
        return
    previous = element.getprevious()
    parent = element.getparent()
    if previous is not None:
        previous.tail = (previous.tail or "") + element.tail
    else:
        parent.text = (parent.text or "") + element.tail


def _normalise_whitespace(root: Any) -> None:
    """Collapse source line breaks and indentation as a browser does (``white-space: normal``),
    except inside ``<pre>``, ``<code>`` and ``<textarea>``; a ``<pre>`` without ``<code>`` gets
    one, so that trafilatura writes it as a fenced code block."""
    for pre in list(root.iter("pre")):
        if pre.find(".//code") is None:
            code = pre.makeelement("code", {})
            code.text, pre.text = pre.text, None
            for child in list(pre):
                code.append(child)
            pre.append(code)
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        inside = any(a.tag in _PREFORMATTED for a in element.iterancestors())
        if element.text and element.tag not in _PREFORMATTED and not inside:
            element.text = _SPACES.sub(" ", element.text)
        if element.tail and not inside:
            element.tail = _SPACES.sub(" ", element.tail)


def _unwrap_forms(root: Any) -> None:
    """A ``<form>`` holding the page (ASP.NET) is a block of content, not a form to drop."""
    for form in list(root.iter("form")):
        form.tag = "div"
        form.attrib.clear()


def _gather_articles(root: Any) -> None:
    """Several top-level ``<article>`` elements become sections of one article, so that all
    of them (and the headings right before the first) are the main content."""
    tops = [
        a for a in root.iter("article") if not any(p.tag == "article" for p in a.iterancestors())
    ]
    if len(tops) < 2:
        return
    chains = [[a, *a.iterancestors()] for a in tops]
    shared = set(chains[0][1:])
    for chain in chains[1:]:
        shared &= set(chain[1:])
    parent = next(p for p in chains[0][1:] if p in shared)  # the nearest common ancestor
    children = list(parent)
    positions = []
    for chain in chains:
        below = chain[chain.index(parent) - 1]
        positions.append(children.index(below))
    first, last = min(positions), max(positions)
    while first > 0 and children[first - 1].tag in _HEADINGS:
        first -= 1
    for article in tops:
        article.tag = "section"
    wrapper = root.makeelement("article", {})
    children[first].addprevious(wrapper)
    for child in children[first : last + 1]:
        wrapper.append(child)


def _frame_body(root: Any) -> None:
    """A page without ``<main>``, ``<article>`` or ``role="main"`` gets its body framed as
    ``<main>``: without a frame trafilatura falls back to collecting loose paragraphs and
    loses the headings (its chrome pruning still applies inside the frame)."""
    if root.find(".//main") is not None or root.find(".//article") is not None:
        return
    if root.xpath(".//*[@role='main']"):
        return
    body = root.find(".//body")
    if body is None:
        return
    frame = root.makeelement("main", {})
    frame.text, body.text = body.text, None
    for child in list(body):
        frame.append(child)
    body.append(frame)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return unicodedata.normalize("NFC", text)


_CONFIG: Any = None
_CELLS_AND_ITEMS = frozenset(
    {"table", "tr", "td", "th", "row", "cell", "ul", "ol", "li", "list", "item"}
)


def _keep_short_cells() -> None:
    """trafilatura drops any element whose whole text is a share-button word ("Email", "PDF",
    "Print", "Google", ...). In a table cell or list item that word is content ("Export
    formats: PDF"), so there only empty text is dropped. (Patched in the worker, for the
    pinned trafilatura version; its tests cover it.)"""
    import trafilatura.htmlprocessing as processing
    from trafilatura.utils import textfilter

    def keep_cells(element: Any) -> bool:
        if element.tag in _CELLS_AND_ITEMS or any(
            a.tag in _CELLS_AND_ITEMS for a in element.iterancestors()
        ):
            text = element.tail if element.text is None else element.text
            return not text or text.isspace()
        return bool(textfilter(element))

    processing.textfilter = keep_cells


def _config() -> Any:
    """trafilatura's settings for help-centre pages: short pages are content too (its default
    250-character minimum sends them to fallbacks that pick up banners), no date search."""
    global _CONFIG
    if _CONFIG is None:
        from trafilatura.settings import use_config

        config = use_config()
        config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
        config.set("DEFAULT", "MIN_OUTPUT_SIZE", "1")
        config.set("DEFAULT", "EXTENSIVE_DATE_SEARCH", "off")
        config.set("DEFAULT", "MAX_FILE_SIZE", str(2**62))  # ours is checked before
        _CONFIG = config
    return _CONFIG


def _serve() -> None:
    """A worker process's loop: one job in, one outcome out, until standard input closes.

    Frames on stdin/stdout are an 8-byte big-endian length and a pickle (parent and worker are
    the same program; nothing else writes to these pipes).
    """
    import trafilatura  # noqa: F401  (imported before "ready": not counted in a page's time)

    _keep_short_cells()

    reader, writer = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a library's print() must not corrupt the frames

    def send(outcome: tuple[str, ...]) -> None:
        data = pickle.dumps(outcome)
        writer.write(len(data).to_bytes(8, "big") + data)
        writer.flush()

    send(("ready",))
    while True:
        header = reader.read(8)
        if len(header) < 8:
            return
        job = pickle.loads(reader.read(int.from_bytes(header, "big")))
        try:
            outcome: tuple[str, ...] = _extract(*job)
        except RecursionError:
            outcome = ("bad", "too deeply nested for the extractor; leave it out")
        except MemoryError:
            outcome = ("bad", "ran out of memory while extracting; leave it out")
        except Exception as e:  # a library bug on one page must not end the worker
            reason = " ".join(str(e).split())[:200] or type(e).__name__
            outcome = ("bad", f"extraction failed ({type(e).__name__}: {reason})")
        send(outcome)


# --- the caller's side: a few worker processes, each killed when a page runs out of time ----


class _WorkerDied(Exception):
    """The worker process ended (or broke its pipe) in the middle of a page."""


class _Worker:
    """One worker process (``python -c`` of :func:`_serve`, not multiprocessing: no re-import
    of the caller's main module, nothing inherited but the environment)."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from retrieval.html import _serve; _serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            ready = self._receive(WORKER_START_S)
        except _WorkerDied:
            ready = None
        if ready is None:
            self.kill()
            raise BadDocumentError("the HTML extractor did not start; check the installation")

    def run(self, job: tuple[Any, ...], seconds: float) -> tuple[str, ...] | None:
        """The outcome, or None when the time ran out (the worker is then killed)."""
        data = pickle.dumps(job)
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(len(data).to_bytes(8, "big") + data)
            stdin.flush()
        except OSError as e:
            raise _WorkerDied from e
        outcome = self._receive(seconds)
        if outcome is None:
            self.kill()
        return outcome

    def _receive(self, seconds: float) -> tuple[str, ...] | None:
        """One frame within ``seconds``; None on time-out."""
        deadline = time.monotonic() + seconds
        header = self._read_exactly(8, deadline)
        if header is None:
            return None
        body = self._read_exactly(int.from_bytes(header, "big"), deadline)
        if body is None:
            return None
        outcome: tuple[str, ...] = pickle.loads(body)
        return outcome

    def _read_exactly(self, size: int, deadline: float) -> bytes | None:
        stdout = self._process.stdout
        assert stdout is not None
        fd = stdout.fileno()
        parts: list[bytes] = []
        while size:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            part = os.read(fd, min(size, 1 << 20))
            if not part:
                raise _WorkerDied
            parts.append(part)
            size -= len(part)
        return b"".join(parts)

    def kill(self) -> None:
        self._process.kill()
        self._process.wait(10)
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class _Pool:
    """Up to ``size`` workers shared by threads; a worker serves one page at a time."""

    def __init__(self, size: int) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def run(self, job: tuple[Any, ...], seconds: float) -> tuple[str, ...]:
        with self._slots:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None:
                worker = _Worker()
            try:
                outcome = worker.run(job, seconds)
            except _WorkerDied:
                worker.kill()
                return ("bad", "the extractor crashed on this page; leave it out")
            except BaseException:
                worker.kill()
                raise
            if outcome is None:
                return ("bad", f"extraction took over the limit of {seconds:g} seconds")
            with self._lock:
                self._idle.append(worker)
            return outcome


_POOL: _Pool | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> _Pool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = _Pool(max(1, min(4, os.cpu_count() or 1)))
        return _POOL
