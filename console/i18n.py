"""The console's two languages: English (the source strings) and Korean.

The language follows the browser's ``Accept-Language`` (the highest-weighted of ``ko`` and
``en``; English when neither is asked for). Korean strings live in JSON catalogs under
``console/locale/ko/``, one file per author or page (``core.json``, ``review.json``...), all
merged: a template writes ``{{ _("Overview") }}`` and a catalog maps ``"Overview"`` to
``"개요"``. A string missing from the catalogs shows in English. Identifiers shown to people
(``"mode_mention"``, ``"not_found"``...) have English names too, in ``console/locale/en/``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LANGUAGES = ("en", "ko")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def language(accept_language: str | None) -> str:
    """``"ko"`` or ``"en"`` from an ``Accept-Language`` header (RFC 9110 weights)."""
    best, best_q = "en", -1.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES and primary != "*":
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        q -= position * 1e-6  # equal weights: the first listed wins
        if primary != "*" and q > best_q and q > 0:
            best, best_q = primary, q
    return best


@cache
def catalog(lang: str) -> dict[str, str]:
    """Every string of ``lang``'s catalogs (for English, the source language, only the names of
    identifiers)."""
    merged: dict[str, str] = {}
    directory = LOCALE_DIR / lang
    if not directory.is_dir():
        return merged
    for path in sorted(directory.glob("*.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def translate(lang: str, text: str, **values: object) -> str:
    """``text`` in ``lang``, with ``{name}`` placeholders filled from ``values``."""
    translated = catalog(lang).get(text, text)
    return translated.format(**values) if values else translated
