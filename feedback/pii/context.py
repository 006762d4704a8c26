"""The words next to a number: what tells an account number from an order number.

Keywords are looked for in a window before (and for bank names, after) a candidate, in the
NFKC-normalised, lower-cased text. The nearest keyword before a number decides: in "주문번호
2024-123456, 환불 계좌 국민 123-45-678901" the order number's nearest keyword is 주문번호 and
the account's is 국민. A sentence end (``.?!。\\n`` followed by a space or the end) closes the
window.
"""

from __future__ import annotations

import re
from typing import Literal

Side = Literal["before", "after"]

# Korean keywords match as substrings (Korean glues particles to words: 계좌로, 주문번호는);
# English ones (regular expressions) as whole words.


def _keywords(ko: list[str], en: list[str]) -> re.Pattern[str]:
    parts = [re.escape(k) for k in ko] + [rf"(?<![a-z0-9]){k}(?![a-z])" for k in en]
    return re.compile("|".join(parts))


# Identity numbers: 주민등록번호, 외국인등록번호 and how people write them.
IDENTITY = _keywords(
    ["주민", "외국인등록", "외국인 등록", "생년월일", "신분증"],
    [
        "rrn",
        "arn",
        "resident registration",
        "resident id",
        "alien registration",
        "foreigner registration",
        "registration (?:no|number)",
        "national id",
        "id number",
    ],
)

CARD = _keywords(
    ["카드", "신용", "체크", "결제", "카드번호"],
    ["card", "visa", "master ?card", "amex", "american express", "jcb", "unionpay", "credit",
     "debit", "cc", "discover", "diners", "pan"],
)  # fmt: skip

# Banks and accounts. Korean bank names that are also everyday words (우리 "we", 하나 "one",
# 기업 "company", city names) count only with 은행/뱅크 after them, which ``은행`` covers.
BANK_NAME = _keywords(
    [
        "국민", "신한", "농협", "카카오뱅크", "카뱅", "케이뱅크", "토스뱅크", "새마을금고",
        "신협", "우체국", "수협", "씨티", "sc제일", "은행", "뱅크",
    ],
    [
        "bank", "kookmin", "shinhan", "woori", "hana", "nonghyup", "kakao ?bank", "k ?bank",
        "toss ?bank", "citi(?:bank)?", "chase", "wells fargo", "hsbc", "barclays", "revolut",
    ],
)  # fmt: skip
# Before a number only ("512 KB" is a size, "KB 123-45-678901" an account).
ACCOUNT_WORD = _keywords(
    ["계좌", "예금주", "입금", "송금", "이체", "통장"],
    [
        "kb", "nh", "ibk", "kdb", "account (?:no|number|#)", "acct", "a/c", "bank account",
        "checking", "savings", "iban", "wire", "deposit",
    ],
)  # fmt: skip

PHONE = _keywords(
    ["전화", "연락처", "휴대폰", "핸드폰", "휴대전화"],
    ["phone", "tel", "call", "mobile", "cell", "whatsapp", "contact"],
)

# Keywords that make a number something other than personal data. 국민연금/국민건강 are not
# banks; 사업자등록번호 is a business's public identifier (printed on every Korean shop's
# site), not a person's.
OTHER = _keywords(
    [
        "주문", "송장", "운송장", "택배", "등기", "인보이스", "청구서", "영수증", "티켓",
        "접수", "문의번호", "예약", "승인번호", "거래번호", "사업자", "법인", "시리얼", "모델",
        "빌드", "버전", "고객센터", "대표번호", "상품번호", "품번", "쿠폰", "바코드", "국민연금",
        "국민건강", "사건", "민원", "회원번호", "배송",
    ],
    [
        "order", "orders", "invoice", "inv", "tracking", "track", "shipment", "parcel",
        "ticket", "case", "incident", "reservation", "booking", "confirmation", "approval",
        "transaction", "txn", "ref", "reference", "business registration", "isbn", "issn",
        "serial", "s/n", "sn", "model", "build", "version", "sku", "product", "item", "coupon",
        "barcode", "routing", "aba", "swift", "po", "usps", "fedex", "ups", "dhl", "ein",
        "vat", "customer service", "hotline", "ext",
    ],
)  # fmt: skip

# "account no. 123", "tel. 010…": an abbreviation's dot does not end the sentence.
_SENTENCE_END = re.compile(r"(?<!\bno)(?<!\bacct)(?<!\btel)(?<!\bph)[.?!。](?:\s|$)|\n")


def nearest_before(text: str, start: int, patterns: dict[str, re.Pattern[str]], window: int) -> str:
    """The name of the pattern whose match ends closest before ``start`` (within ``window``
    characters and the same sentence), or ``""``."""
    lo = max(0, start - window)
    head = text[lo:start].lower()
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends:
        head = head[ends[-1] :]
    best, best_end = "", -1
    for name, pattern in patterns.items():
        for m in pattern.finditer(head):
            if m.end() > best_end:
                best, best_end = name, m.end()
    return best


def nearest_after(text: str, end: int, patterns: dict[str, re.Pattern[str]], window: int) -> str:
    """The name of the pattern whose match starts closest after ``end``, or ``""``."""
    tail = text[end : end + window].lower()
    stop = _SENTENCE_END.search(tail)
    if stop:
        tail = tail[: stop.start()]
    best, best_start = "", len(tail) + 1
    for name, pattern in patterns.items():
        m = pattern.search(tail)
        if m and m.start() < best_start:
            best, best_start = name, m.start()
    return best
