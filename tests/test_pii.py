"""The PII scrubber on its own (pure logic): each kind of number with the ways people write
it, and the numbers that only look like personal data."""

from __future__ import annotations

import pytest

from feedback.pii import Scrubber
from tests.conftest import REPO

CASE = REPO.parent / "shared" / "cases" / "pii-korean" / "inputs.txt"

scrub = Scrubber()


def test_the_case_lines_lose_the_registration_and_card_numbers():
    rrn_line, card_line = CASE.read_text(encoding="utf-8").splitlines()[:2]

    assert scrub(rrn_line) == "제 주민등록번호는 [RRN] 입니다. 환불 계좌로 보내주세요."
    assert scrub(card_line) == "My card [CARD] was charged twice, exp 12/29."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # resident registration numbers: hyphen, space, none, dash, full-width, glued to words
        ("주민번호 850315-2954867로 인증", "주민번호 [RRN]로 인증"),
        ("번호 771130 1729022 입력", "번호 [RRN] 입력"),
        ("주민등록번호: 9207212057988", "주민등록번호: [RRN]"),
        ("가입할 때 8503152954867 넣었어요", "가입할 때 [RRN] 넣었어요"),  # valid check digit
        ("주민번호 8503152954860", "주민번호 [RRN]"),  # wrong check digit, keyword before
        ("주민번호 900101–1234567 (en dash)", "주민번호 [RRN] (en dash)"),
        ("주민번호는900101-1234567이고", "주민번호는[RRN]이고"),
        # issued since October 2020: no check digit, the shape is enough
        ("아이 번호 230611-4616751 등록", "아이 번호 [RRN] 등록"),
        ("앞자리는 920107 뒷자리는 2878068 이에요", "앞자리는 920107 뒷자리는 2878068 이에요"),
        ("주민번호 앞자리는 920107 뒷자리는 2878068", "주민번호 앞자리는 [RRN] 뒷자리는 [RRN]"),
        # foreigner registration numbers
        ("외국인등록번호 850315-5123456 로 가입", "외국인등록번호 [FRN] 로 가입"),
        ("ARN 880808 5012345 for the visa", "ARN [FRN] for the visa"),
        ("Alien Registration Card number 7607175548218", "Alien Registration Card number [FRN]"),
        # cards: spaces, hyphens, dots, none, Amex 4-6-5, 19 digits, double spaces
        ("카드번호 4526-0181-5908-3012 로 결제", "카드번호 [CARD] 로 결제"),
        ("card: 5182199351819098", "card: [CARD]"),
        ("결제 카드 5537.8657.9754.3235 환불", "결제 카드 [CARD] 환불"),
        ("Amex 3455 597971 14716 declined", "Amex [CARD] declined"),
        ("UnionPay 6213 7215 9010 9281 593 실패", "UnionPay [CARD] 실패"),
        ("카드 4111  1111  1111  1111 입력", "카드 [CARD] 입력"),
        ("체크카드 9410117777412153 국내전용", "체크카드 [CARD] 국내전용"),
        (
            "주문번호 2024-123456 결제 카드 5131 3735 3799 0758",
            "주문번호 2024-123456 결제 카드 [CARD]",
        ),
        (
            "https://pay.example.com/?card=4111111111111111&amt=1",
            "https://pay.example.com/?card=[CARD]&amt=1",
        ),
        # Korean mobile numbers without separators, with spaces, +82
        ("연락처 01012345678로 전화", "연락처 [PHONE]로 전화"),
        ("010 9876 5432 으로 문자", "[PHONE] 으로 문자"),
        ("Call me at +821012345678", "Call me at [PHONE]"),
        ("핸드폰 +82 (0)10 3333 4444", "핸드폰 [PHONE]"),
        ("전화 82-10-1234-5678 로", "전화 [PHONE] 로"),
        # accounts next to bank names, before or after, Korean and English
        ("국민은행 123-45-678901 으로 환불", "국민은행 [ACCOUNT] 으로 환불"),
        ("신한 110-123-456789 김민수", "신한 [ACCOUNT] 김민수"),
        ("KB 계좌 123456789012", "KB 계좌 [ACCOUNT]"),
        ("account number 12345678901 at Woori", "account number [ACCOUNT] at Woori"),
        ("Bank: Shinhan, account no. 110-234-567890", "Bank: Shinhan, account no. [ACCOUNT]"),
        ("110123456789 신한은행으로 보내주세요", "[ACCOUNT] 신한은행으로 보내주세요"),
        ("계좌: 110 123 456789 신한", "계좌: [ACCOUNT] 신한"),
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN [ACCOUNT]"),
    ],
)
def test_each_kind_in_the_ways_people_write_it(text: str, expected: str):
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "주문번호 2024-123456 배송 언제 오나요?",
        "Order #2024-123456 hasn't shipped yet.",
        "주문번호 8503152954867 조회가 안 돼요",  # a valid RRN check digit, but an order
        "주문번호 850315-2954860 취소 요청",
        "Order 4526018159083012 status?",  # Luhn-valid, but an order
        "쿠폰번호 4000 1234 5678 9017 적용이 안 돼요",
        "2024-03-15에 결제했어요, 결제일 20240315",
        "가격은 ₩1,234,567입니다, $1,299.00, €1.234,56",
        "버전 v1.2.3, Windows 10.0.19045, Chrome 122.0.6261.112",
        "ISBN 978-89-6077-120-8 / 9788960771208",
        "바코드 8805122100001 상품 재고 문의",  # valid RRN check digit and EAN: a barcode
        "운송장번호 612345678901, USPS tracking 9400 1000 0000 0000 0000 00",
        "사업자등록번호 123-45-67890 으로 세금계산서 발행",
        "KB국민은행 고객센터 1588-9999",
        "routing number 021000021",
        "국민연금 납부액 123,450원",
        "카카오뱅크 20240315 입금",
        "회의는 14:30에 시작합니다, 09:00-18:00",
        "test number 4111 1111 1111 1112 fails validation",  # not Luhn-valid
        "message id 1219876543210987654 in the Discord log",
        "account ID 1234567890 can't log in",
        "Zoom 회의 ID 845 1234 5678 입니다",
        "주민번호 900101-1****** 로 마스킹돼서 보여요",
        "강남구(+59,206, +25.68%), 서초구(+43,820, +23.66%)",  # signed figures, not phones
    ],
)
def test_numbers_that_only_look_like_personal_data_are_kept(text: str):
    assert scrub(text) == text


def test_matching_on_nfkc_replaces_in_the_original_text():
    text = (
        "주민번호（본인）：９００１０１－１２３４５６７ "
        "카드 ５５３７ ８６５７ ９７５４ ３２３５ ㈜한국"
    )

    assert scrub(text) == "주민번호（본인）：[RRN] 카드 [CARD] ㈜한국"
    found = scrub.find(text)
    assert [(f.kind, f.text) for f in found] == [
        ("rrn", "９００１０１－１２３４５６７"),
        ("card", "５５３７ ８６５７ ９７５４ ３２３５"),
    ]
    assert all(text[f.start : f.end] == f.text for f in found)


def test_several_kinds_in_one_line_each_get_their_placeholder():
    text = (
        "이름 김민수, 주민번호 850315-2954867, 연락처 01012345678, 계좌 국민 123-45-678901, "
        "카드 4111-1111-1111-1111, mail kim@example.com, password: hunter2!!"
    )

    assert scrub(text) == (
        "이름 김민수, 주민번호 [RRN], 연락처 [PHONE], 계좌 국민 [ACCOUNT], "
        "카드 [CARD], mail [EMAIL], password: [SECRET]"
    )


def test_disabled_passes_text_through_and_the_manifest_lists_the_checks():
    text = "주민번호 850315-2954867"
    assert Scrubber(enabled=False)(text) == text
    assert Scrubber(enabled=False).describe() == {
        "enabled": False,
        "normalization": "NFKC",
        "rules": [],
    }

    described = Scrubber().describe()["rules"]
    assert isinstance(described, list)
    rules = {r["name"]: r for r in described}
    assert {"kr_resident_registration", "kr_foreigner_registration", "card_number",
            "bank_account", "phone_kr"} <= set(rules)  # fmt: skip
    assert "stdnum.kr.rrn" in rules["kr_resident_registration"]["check"]
    assert "Luhn" in rules["card_number"]["check"]
