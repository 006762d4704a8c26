"""Numbers that identify a person: Korean resident and foreigner registration numbers, payment
card numbers, bank account numbers.

All three start from the same candidate, a *digit run*: digit groups joined by single
separators (a space, a dot, a hyphen or dash with optional spaces around it), as people type
them: ``900101-1234567``, ``4111 1111 1111 1111``, ``110-123-456789``. Checks then decide,
with python-stdnum for the checksums (``stdnum.kr.rrn``, ``stdnum.luhn``, ``stdnum.iban``):

- **RRN / foreigner number** (``YYMMDD-GNNNNNN``): a real date of birth and a gender digit
  1–8 (5–8: foreigners). Written as 6 + 7 digits, such a number is scrubbed even with a wrong
  check digit: numbers issued since October 2020 no longer carry one (the last six digits
  are random). As 13 bare digits the shape is ambiguous, so the check digit must hold, or an
  identity keyword (주민, 외국인등록, RRN…) must stand just before it. A wrong check digit
  after an order/tracking keyword is an order number.
- **Card** (13–19 digits, any grouping): Luhn-valid, with an issuer prefix (2[2-7], 3[0456789],
  4, 5, 6; 9 for 16-digit Korean domestic cards), and not after an order or tracking keyword
  unless a card keyword is nearer.
- **Account**: 10–16 digits (8–16 after 계좌 / account number) next to a bank name or an
  account word, not a date, and not nearer to an order/ticket/business keyword.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass

from stdnum import iban, luhn
from stdnum.kr import rrn

from feedback.pii.context import (
    ACCOUNT_WORD,
    BANK_NAME,
    CARD,
    IDENTITY,
    OTHER,
    PHONE,
    nearest_after,
    nearest_before,
)
from feedback.pii.rule import Span

_DASH = "-‐‑‒–—−"
# A digit run. It does not start inside a decimal or a thousands-separated number (1,234 /
# 1.5), nor after "+" (international phone numbers are the phone rules' business).
DIGIT_RUN = (
    rf"(?<![0-9+])(?<![0-9][.,])[0-9]+(?:(?:[ \t]*[{_DASH}][ \t]*|[ \t]{{1,3}}|\.)[0-9]+)*(?![0-9])"
)
IBAN_CANDIDATE = r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}(?![A-Za-z0-9])"


@dataclass(frozen=True, slots=True)
class _Group:
    digits: str
    start: int  # offset in the text
    end: int
    sep: str  # the separator before this group: "", "-", ".", " "


def _groups(match: re.Match[str]) -> list[_Group]:
    text, base = match.group(), match.start()
    groups: list[_Group] = []
    previous_end = 0
    for m in re.finditer(r"[0-9]+", text):
        between = text[previous_end : m.start()]
        sep = (
            ""
            if not groups
            else "-"
            if any(c in _DASH for c in between)
            else "."
            if "." in between
            else " "
        )
        groups.append(_Group(m.group(), base + m.start(), base + m.end(), sep))
        previous_end = m.end()
    return groups


# --- resident / foreigner registration numbers ----------------------------------------------


def _birth_date_ok(number: str) -> bool:
    gender = number[6]
    if gender not in "12345678":
        return False
    century = 1900 if gender in "1256" else 2000
    try:
        datetime.date(century + int(number[:2]), int(number[2:4]), int(number[4:6]))
    except ValueError:
        return False
    return True


def _registration_numbers(match: re.Match[str], *, foreign: bool) -> Iterator[Span]:
    text = match.string
    groups = _groups(match)
    for i, group in enumerate(groups):
        if len(group.digits) == 13:
            number, span, written_split = group.digits, (group.start, group.end), False
        elif (
            len(group.digits) == 6
            and i + 1 < len(groups)
            and len(groups[i + 1].digits) == 7
            and groups[i + 1].sep in ("-", " ")
        ):
            number = group.digits + groups[i + 1].digits
            span, written_split = (group.start, groups[i + 1].end), True
        else:
            continue
        if not _birth_date_ok(number) or (number[6] in "5678") != foreign:
            continue
        checksum_ok = rrn.is_valid(number)
        near = nearest_before(text, span[0], {"id": IDENTITY, "other": OTHER}, 40)
        # Written 6 + 7, the shape is enough (recent numbers have no check digit) unless an
        # order keyword is nearer and the check digit fails; 13 bare digits need the check
        # digit. An identity keyword decides either way.
        plausible = written_split or checksum_ok
        if near == "id" or (near != "other" and plausible) or (written_split and checksum_ok):
            yield span


# "앞자리 900101 뒷자리 1234567": the two halves apart, a few words between them.
HALVES = r"(?<![0-9])(?P<front>[0-9]{6})(?![0-9])[^0-9]{1,20}(?P<back>[1-8][0-9]{6})(?![0-9])"


def _registration_halves(match: re.Match[str], *, foreign: bool) -> Iterator[Span]:
    number = match.group("front") + match.group("back")
    if not _birth_date_ok(number) or (number[6] in "5678") != foreign:
        return
    near = nearest_before(match.string, match.start(), {"id": IDENTITY, "other": OTHER}, 40)
    if near == "id":
        yield match.span("front")
        yield match.span("back")


def resident_halves(match: re.Match[str]) -> Iterator[Span]:
    return _registration_halves(match, foreign=False)


def foreigner_halves(match: re.Match[str]) -> Iterator[Span]:
    return _registration_halves(match, foreign=True)


def resident_numbers(match: re.Match[str]) -> Iterator[Span]:
    """주민등록번호 (gender digit 1–4)."""
    return _registration_numbers(match, foreign=False)


def foreigner_numbers(match: re.Match[str]) -> Iterator[Span]:
    """외국인등록번호 (gender digit 5–8)."""
    return _registration_numbers(match, foreign=True)


# --- payment cards ------------------------------------------------------------------------


def _issuer_prefix_ok(number: str) -> bool:
    if number[0] == "9":
        return len(number) == 16  # Korean domestic cards (BC and others)
    return (
        number[0] in "456"
        or number[:2] in {"22", "23", "24", "25", "26", "27"}
        or (number[0] == "3" and number[1] in "0456789")
    )


def card_numbers(match: re.Match[str]) -> Iterator[Span]:
    """The longest Luhn-valid run of consistently separated groups, leftmost first."""
    text = match.string
    groups = _groups(match)
    i = 0
    while i < len(groups):
        for j in range(len(groups) - 1, i - 1, -1):
            part = groups[i : j + 1]
            if len({g.sep for g in part[1:]}) > 1:
                continue
            number = "".join(g.digits for g in part)
            if not 13 <= len(number) <= 19 or not _issuer_prefix_ok(number):
                continue
            if not luhn.is_valid(number):
                continue
            near = nearest_before(text, part[0].start, {"card": CARD, "other": OTHER}, 30)
            if near == "other":
                continue
            yield part[0].start, part[-1].end
            i = j
            break
        i += 1


# --- bank accounts ------------------------------------------------------------------------

_DATE = re.compile(r"(?:19|20)[0-9]{2}([-. ]?)(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12][0-9]|3[01])")


def _account_units(groups: list[_Group]) -> Iterator[list[_Group]]:
    """The whole run, or else its parts between spaces (``국민 123-45-678901 2024``)."""
    yield groups
    unit: list[_Group] = []
    for group in groups:
        if group.sep == " " and unit:
            yield unit
            unit = []
        unit.append(group)
    if unit and len(unit) < len(groups):
        yield unit


def account_numbers(match: re.Match[str]) -> Iterator[Span]:
    text = match.string
    groups = _groups(match)
    for unit in _account_units(groups):
        if any(g.sep == "." for g in unit[1:]):
            continue
        number = "".join(g.digits for g in unit)
        start, end = unit[0].start, unit[-1].end
        if not 8 <= len(number) <= 16 or _DATE.fullmatch(text[start:end]):
            continue
        before = nearest_before(
            text, start, {"bank": BANK_NAME, "account": ACCOUNT_WORD, "other": OTHER}, 24
        )
        after = nearest_after(text, end, {"bank": BANK_NAME, "other": OTHER}, 16)
        if before == "account" or (
            len(number) >= 10 and (before == "bank" or (before != "other" and after == "bank"))
        ):
            yield start, end
            return


def iban_numbers(match: re.Match[str]) -> Iterator[Span]:
    if iban.is_valid(match.group()):
        yield match.span()


# --- phone numbers --------------------------------------------------------------------------


def phone_numbers(match: re.Match[str]) -> Iterator[Span]:
    """A phone-shaped match, unless it is written without separators right after an order,
    serial or routing keyword (``routing number 021000021`` is not a Seoul number)."""
    if (
        re.search(r"[^0-9]", match.group())
        or nearest_before(match.string, match.start(), {"other": OTHER, "phone": PHONE}, 24)
        != "other"
    ):
        yield match.span()


def international_numbers(match: re.Match[str]) -> Iterator[Span]:
    """``+`` numbers with 8 to 15 digits (E.164 allows 15), not a signed figure
    (``+25.68%``)."""
    digits = sum(c.isdigit() for c in match.group())
    after = match.string[match.end() : match.end() + 1]
    if 8 <= digits <= 15 and after != "%":
        yield match.span()
