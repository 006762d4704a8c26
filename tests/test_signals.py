"""The implicit-signal detector (:mod:`bot.signals`): its measured precision and recall on the
labelled thread messages (floors, as measured; ``bench/signals_bench.py`` prints the table),
and the kinds of message it must tell apart."""

from __future__ import annotations

import pytest

from bench.signals_bench import DEV, HOLDOUT, HOLDOUT2, load, score
from bot.signals import SignalDetector, SignalKind, is_agreement, is_resolved_reaction
from retrieval.embeddings import LocalE5Embeddings

# (precision, recall) floors per kind, a little under what was measured (see the README).
DEV_FLOORS = {
    "acknowledgement": (0.97, 0.97), "disapproval": (1.0, 1.0), "frustration": (0.95, 0.97),
    "handoff_request": (0.97, 0.97), "rephrase": (0.80, 0.75), "teammate_answer": (0.97, 0.97),
    "teammate_agreed": (0.97, 0.97),
}  # fmt: skip
# Held out 1: its misses' kinds were studied to improve the rules (contaminated; see the bench).
HOLDOUT_FLOORS = {
    "acknowledgement": (0.97, 0.97), "frustration": (0.97, 0.97), "handoff_request": (0.97, 0.97),
    "rephrase": (0.80, 0.60), "teammate_answer": (0.95, 0.95), "teammate_agreed": (0.95, 0.95),
}  # fmt: skip
# Held out 2: written before the rules changed, never tuned on (measured: frustration 100% /
# 100% of 28, acknowledgement 100% / 90%, rephrase 62.5% / 83.3%, all signals 94.7% / 96.4%).
HOLDOUT2_FLOORS = {
    "acknowledgement": (0.95, 0.85), "frustration": (0.95, 0.95), "handoff_request": (0.95, 0.95),
    "rephrase": (0.60, 0.80), "teammate_answer": (0.95, 0.95), "teammate_agreed": (0.95, 0.95),
}  # fmt: skip


@pytest.fixture(scope="module")
def detector(embedder: LocalE5Embeddings) -> SignalDetector:
    return SignalDetector(embedder.embed_queries)


def test_the_labelled_sets_are_big_enough_and_bilingual():
    rows = load([DEV, HOLDOUT, HOLDOUT2])
    assert len(load([DEV])) >= 300 and len(load([HOLDOUT])) >= 100
    assert len(load([HOLDOUT2])) >= 60
    assert {r["lang"] for r in rows} == {"en", "ko", "mixed"}
    tags = {t for r in rows for t in r["tags"]}  # type: ignore[attr-defined]
    assert {"sarcasm", "thanks_question"} <= tags


@pytest.mark.parametrize(
    ("path", "floors"),
    [(DEV, DEV_FLOORS), (HOLDOUT, HOLDOUT_FLOORS), (HOLDOUT2, HOLDOUT2_FLOORS)],
)
def test_precision_and_recall_stay_at_the_measured_floors(
    detector: SignalDetector, path: object, floors: dict[str, tuple[float, float]]
):
    scores = score(detector, load([path]))  # type: ignore[list-item]
    for kind, (precision, recall) in floors.items():
        assert scores.precision(kind) >= precision, kind
        assert scores.recall(kind) >= recall, kind


@pytest.mark.parametrize(
    "text",
    [
        "oh great, thanks for nothing",
        "감사는 무슨, 하나도 안 되는데",
        "wow thanks, now it's even more broken",
    ],
)
def test_sarcastic_thanks_is_frustration_not_thanks(text: str):
    found = SignalDetector().from_asker(text)
    assert found is not None and found.kind is SignalKind.FRUSTRATION and found.weight < 0


@pytest.mark.parametrize(
    "text",
    ["thanks, but where is the invoice?", "감사합니다. 그런데 영수증은 어디서 받나요?",
     "thanks! 혹시 교환도 되나요"],
)  # fmt: skip
def test_thanks_with_a_question_is_no_signal(text: str):
    assert SignalDetector().from_asker(text) is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [("talk to a human please", SignalKind.HANDOFF_REQUEST),
     ("상담원 연결해 주세요", SignalKind.HANDOFF_REQUEST),
     ("사람과 상담하고 싶어요", SignalKind.HANDOFF_REQUEST),
     ("이거 아닌데요", SignalKind.FRUSTRATION), ("틀렸어요", SignalKind.FRUSTRATION),
     ("still doesn't work", SignalKind.FRUSTRATION),
     ("해결됐어요 감사합니다", SignalKind.ACKNOWLEDGEMENT)],
)  # fmt: skip
def test_rules_read_korean_and_english(text: str, kind: SignalKind):
    found = SignalDetector().from_asker(text)
    assert found is not None and found.kind is kind


@pytest.mark.parametrize(
    "text",
    [
        # a failure that persists, named by its symptom, in either language or both
        "it still shows error 403",
        "still spinning forever",
        "아직도 에러가 떠요",
        "still 오류 나요",
        # nothing changed
        "none of that worked",
        "it did not fix anything",
        "해 봤는데 변화가 없어요",
        "이 방법은 안 통해요",
        # the same answer again
        "you keep sending me the same link",
        "그 얘기는 아까 하셨잖아요 계속 그 말만",
        "같은 답변만 주시네요",
        # what the answer pointed to is not there
        "the export option isn't there",
        "there's no such menu",
        "the link is dead",
        "알려주신 페이지가 없는 페이지라고 나와요",
        "설정 탭이 안 보여요",
        # not what was asked
        "that's not my question",
        "제가 궁금한 건 그게 아니에요",
        "질문이랑 상관없는 얘기네요",
        # said as a reply: it does not work, I already did that, exasperation, bewilderment
        "로그인이 안 되는데요",
        "We already tried that",
        "왜 이렇게 복잡해요",
        "why does it keep failing",
        "???",
        "ㅡㅡ",
    ],
)
def test_kinds_of_frustration_the_first_held_out_set_showed_missing(text: str):
    found = SignalDetector().from_asker(text)
    assert found is not None and found.kind is SignalKind.FRUSTRATION, text


@pytest.mark.parametrize(
    "text",
    [
        "is the old plan still available?",
        "can I still get a refund if the payment failed?",
        "what if the page is blank when I open it?",
        "no change needed on my side?",
        "I have no option to pay by invoice?",
        "why does it take 5 days?",
        "이미 결제했는데 영수증은 어디서 받나요?",
        "다 했어요!",
        "그대로 두면 되나요?",
        "설정 메뉴가 어디 있나요?",
        "효과 있는 방법이 있을까요?",
        "계속 사용하려면 어떻게 하나요?",
        "I did that and it worked",
    ],
)
def test_questions_and_thanks_that_share_those_words_are_no_frustration(text: str):
    found = SignalDetector().from_asker(text)
    assert found is None or found.kind is not SignalKind.FRUSTRATION, text


def test_a_rephrase_must_be_close_and_soon(detector: SignalDetector):
    question = "How do I request a refund?"
    soon = detector.from_asker("how can I get my money back", previous_question=question,
                               seconds_since=60)  # fmt: skip
    late = detector.from_asker("how can I get my money back", previous_question=question,
                               seconds_since=7200)  # fmt: skip
    other = detector.from_asker("is there a dark mode on mobile?", previous_question=question,
                                seconds_since=60)  # fmt: skip
    assert soon is not None and soon.kind is SignalKind.REPHRASE and soon.weight < 0
    assert late is None and other is None


@pytest.mark.parametrize(
    "text", ["+1", "맞아요", "agreed", "what the bot said", "네 맞습니다", "👍"]
)
def test_a_teammates_bare_agreement_is_agreement(text: str):
    assert is_agreement(text)
    found = SignalDetector().from_teammate(text)
    assert found is not None and found.kind is SignalKind.TEAMMATE_AGREED


@pytest.mark.parametrize(
    "text",
    ["+1, but on Enterprise the SSO admin has to do it", "맞아요, 다만 모바일은 아직 안 됩니다"],
)
def test_agreement_with_more_to_say_is_an_answer(text: str):
    found = SignalDetector().from_teammate(text)
    assert found is not None and found.kind is SignalKind.TEAMMATE_ANSWER


@pytest.mark.parametrize(
    "text", ["let me check and get back to you", "확인 후 연락드릴게요", "hi", "looking into it"]
)
def test_a_teammate_passing_or_greeting_gives_no_reference(text: str):
    assert SignalDetector().from_teammate(text) is None


def test_check_mark_reactions_resolve():
    assert all(is_resolved_reaction(r) for r in ("white_check_mark", "heavy_check_mark", "✅"))
    assert not any(is_resolved_reaction(r) for r in ("+1", "eyes", "👀"))
