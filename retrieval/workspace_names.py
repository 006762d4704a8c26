"""What a workspace name may be, and when two names are too alike to tell apart.

A workspace name is typed by operators, printed in reports and chosen by users in Discord
(``/workspace``), so two workspaces must never look the same. The rules:

- A name is NFC-normalised first (a Hangul syllable typed as decomposed jamo is the syllable).
- It then must match the whole pattern (``re.fullmatch``; no ``$``, which lets a trailing
  newline through): 1-63 characters, each an ASCII letter or digit, ``-``, ``_`` or a Hangul
  syllable (U+AC00-U+D7A3), the first one not ``-`` or ``_``. Everything else is refused with
  the offending character named: spaces, control and invisible characters (zero-width space,
  joiners, bidi marks), full-width forms, and every other script. Latin letters are ASCII only
  on purpose: Cyrillic, Greek and Latin letters with look-alike shapes (``а``/``a``, ``ο``/``o``)
  cannot be told apart on screen, and Unicode's full confusables table would be needed to
  catch them all. Hangul syllables are a closed block with no look-alike among the allowed
  characters, so Korean customers can name workspaces in Korean.
- Its *skeleton* (NFKC, case-folded, invisible characters and white space dropped, and the ASCII
  look-alikes ``I``/``l``/``1``, ``O``/``0``, ``rn``/``m`` and ``vv``/``w`` made one) must differ
  from every existing workspace's: ``ACME``, ``ａｃｍｅ`` (full-width) and ``acme`` + zero-width
  space all have the skeleton ``acme``, and ``acme1``, ``acmeI`` and ``acmel`` one skeleton.
  NFKC also folds Hangul compatibility jamo and half-width forms into their ordinary forms.
"""

from __future__ import annotations

import re
import unicodedata

from retrieval.errors import RetrievalError

MAX_LENGTH = 63
_CHAR = r"A-Za-z0-9\uac00-\ud7a3"
_NAME = re.compile(rf"[{_CHAR}][{_CHAR}_-]{{0,{MAX_LENGTH - 1}}}")
_ALLOWED_CHAR = re.compile(rf"[{_CHAR}_-]")
RULE = (
    f"names are 1-{MAX_LENGTH} ASCII letters, digits, '-', '_' or Hangul syllables, "
    "not starting with '-' or '_'"
)


class InvalidWorkspaceNameError(RetrievalError):
    """A workspace name breaks the naming rules (see the module docstring)."""


def normalize_workspace_name(raw: str) -> str:
    """The NFC form of ``raw`` if it is a valid workspace name.

    Raises :class:`InvalidWorkspaceNameError` with one line that names the first character
    that is not allowed (by code point and Unicode name) and the rule.
    """
    name = unicodedata.normalize("NFC", raw)
    if _NAME.fullmatch(name):
        return name
    return _raise(raw, name)


def workspace_skeleton(name: str) -> str:
    """What ``name`` looks like, for comparing names: equal skeletons look alike.

    NFKC folds compatibility forms (full-width ``ａ``, ligatures, half-width and compatibility
    Hangul jamo), case folding folds case (also ``ß``/``ss``), and format characters
    (zero-width space and joiners, bidi marks, soft hyphen), controls and white space are
    dropped because they are invisible.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).translate(_GLYPHS))
    folded = unicodedata.normalize("NFKC", folded.casefold())
    visible = "".join(
        c for c in folded if unicodedata.category(c) not in ("Cf", "Cc", "Zs", "Zl", "Zp")
    )
    for many, one in _GLYPH_RUNS:
        visible = visible.replace(many, one)
    return visible


_GLYPHS = str.maketrans({"I": "l", "1": "l", "|": "l", "0": "o"})
"""ASCII characters that look alike in many fonts (Unicode's confusables, UTS #39): capital
``I``, digit ``1`` and ``l``; digit ``0`` and ``O``. Mapped before case folding, which would
turn ``I`` into ``i``."""
_GLYPH_RUNS = (("rn", "m"), ("vv", "w"))
"""Letter pairs that read as one letter (UTS #39): ``rn``/``m``, ``vv``/``w``."""


def _raise(raw: str, name: str) -> str:
    if not name:
        reason = "it is empty"
    elif len(name) > MAX_LENGTH:
        reason = f"it is {len(name)} characters long"
    else:
        bad = next((c for c in name if not _ALLOWED_CHAR.fullmatch(c)), None)
        if bad is not None:
            reason = f"{_describe(bad)} is not allowed"
        else:
            reason = f"it starts with {name[0]!r}"
    raise InvalidWorkspaceNameError(f"invalid workspace name {raw!r}: {reason}; {RULE}")


def _describe(char: str) -> str:
    label = unicodedata.name(char, "") or (
        "a control character" if unicodedata.category(char) == "Cc" else "an unnamed character"
    )
    shown = f"{char!r} " if char.isprintable() and not char.isspace() else ""
    return f"{shown}(U+{ord(char):04X} {label})"
