"""Fine-tuning exports, on SQLite and PostgreSQL, loaded back with the ``datasets`` library.

The data is planted through the real feedback store; near-duplicate questions are matched with
the real local embedding model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
from datasets import Features, List, Value
from sqlalchemy.engine import Engine

from feedback.answers import normalize_question
from feedback.errors import FeedbackError
from feedback.export import FORMATS, ExportOptions, export_dataset
from feedback.splits import SplitRatios, assign_splits, group_ids
from feedback.store import AnswerRecord, SqlFeedbackStore
from retrieval.embeddings import LocalE5Embeddings
from retrieval.prompts import answer_messages, number_results
from retrieval.store import SearchResult

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
MESSAGE = List({"role": Value("string"), "content": Value("string")})
# TRL rows say where their label came from (OpenAI rows take no extra keys: the manifest does).
PROVENANCE = {
    "label_source": Value("string"),
    "signal_kinds": List(Value("string")),
    "signal_weights": List(Value("float64")),
}
EXPECTED_FEATURES = {
    "sft": Features({"messages": MESSAGE, **PROVENANCE}),
    "openai-sft": Features({"messages": MESSAGE}),
    "kto": Features(
        {"prompt": MESSAGE, "completion": MESSAGE, "label": Value("bool"), **PROVENANCE}
    ),
    "dpo": Features({"prompt": MESSAGE, "chosen": MESSAGE, "rejected": MESSAGE, **PROVENANCE}),
    "openai-dpo": Features(
        {
            "input": {"messages": MESSAGE},
            "preferred_output": MESSAGE,
            "non_preferred_output": MESSAGE,
        }
    ),
}

PII_QUESTION = (
    "I can't log in as kim.minsu@example.com, call me at 010-1234-5678. My key is "
    "sk-proj-AbCdEfGhIjKlMnOpQrStUv12, ask <@U024BE7LH>"
)
PII_CONTEXT = "Locked accounts: write to help@acme.example or call 02-123-4567."
PLANTED = [
    "kim.minsu@example.com", "010-1234-5678", "sk-proj-AbCdEfGhIjKlMnOpQrStUv12", "<@U024BE7LH>",
    "help@acme.example", "02-123-4567", "@lee.support", "xoxb-2048-secret-token",
]  # fmt: skip


@dataclass
class Planted:
    thread: str
    question: str
    answer: str
    votes: list[int]
    mode: str = "llm"
    found: bool = True
    context: str = "See the documentation."
    platform: str = "slack"
    workspace: str = "acme"
    interaction_id: int = 0


def _core() -> list[Planted]:
    return [
        Planted("t1", "How long is the password reset link valid?",
                "The reset link expires after 30 minutes [1].", [1, 1],
                context="The reset link expires after 30 minutes."),
        Planted("t1", "Can I ask for a new link?",
                "Yes, request a new one from the sign-in page [1].", [1]),
        Planted("t2", "How long does the password reset link stay valid?",
                "The link never expires.", [-1]),
        Planted("t3", "세금계산서는 언제 발행되나요?",
                "세금계산서는 매월 10일에 발행됩니다 [1].", [1],
                context="세금계산서는 매월 10일에 발행됩니다."),
        Planted("t4", "세금계산서 발행일이 언제인가요?", "잘 모르겠습니다.", [-1, -1]),
        Planted("t5", "Can I get a refund?", "Yes, within 14 days [1].", [1, -1]),
        Planted("t6", PII_QUESTION,
                "Please reset your password; I have told @lee.support (token "
                "xoxb-2048-secret-token) [1].", [1], context=PII_CONTEXT),
        Planted("t7", "What is the API rate limit?", "100 requests per minute per token [1].", [1]),
        Planted("t8", "what is the API rate limit", "100 requests per minute per token [1].", [1]),
        Planted("t9", "How do I enable two-factor authentication?",
                "> Turn on 2FA from Profile > Security.\n[1]", [1], mode="extractive",
                context="Turn on 2FA from Profile > Security."),
        Planted("t10", "Where can I download invoices?", "From Billing > Invoices [1].", []),
        Planted("", "Who won the football world cup in 2002?",
                "I couldn't find an answer to that in this workspace's documentation.", [-1],
                platform="terminal", found=False),
        Planted("o1", "OTHER-WORKSPACE-MARKER how do I export data?", "From Settings [1].", [1],
                workspace="other"),
    ]  # fmt: skip


FILLER = [
    "How do I invite a teammate to my workspace?",
    "Which browsers are supported?",
    "How do I delete my account?",
    "Is there a mobile app for Android?",
    "How can I change the language of the interface?",
    "Where do I find my API key?",
    "Can I export my conversations to CSV?",
    "What happens when my trial ends?",
    "How do I connect the Slack integration?",
    "배송은 며칠 걸리나요?",
    "비밀번호를 바꾸려면 어떻게 하나요?",
    "영수증을 다시 받을 수 있나요?",
    "계정을 다른 사람에게 넘길 수 있나요?",
    "How do I set up single sign-on with Okta?",
    "What are your support hours?",
    "Can I pay by bank transfer?",
    "How do I turn off email notifications?",
    "Why was my card declined?",
    "How do I rename a project?",
    "Do you offer discounts for nonprofits?",
]


def _prompt(question: str, context: str) -> list[dict[str, str]]:
    result = SearchResult(
        "c-" + question[:8], "doc", "kb.md", "Help", "", context, None, "file", 1, 0.9
    )
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    messages = answer_messages(question, number_results([result]))
    return [{"role": roles[m.type], "content": m.text} for m in messages]


def _plant(engine: Engine, items: list[Planted]) -> SqlFeedbackStore:
    ticks = iter(range(10_000))
    start = NOW - timedelta(days=3)
    store = SqlFeedbackStore(
        engine, user_hash_key=b"k", clock=lambda: start + timedelta(minutes=next(ticks))
    )
    for n, item in enumerate(items):
        chunk = {"chunk_id": f"c{n}", "doc_id": "doc", "source": "kb.md", "title": "Help",
                 "heading": "", "url": None, "text": item.context, "score": 1.0,
                 "similarity": 0.9}  # fmt: skip
        item.interaction_id = store.record_answer(
            AnswerRecord(
                workspace=item.workspace,
                platform=item.platform,
                question=item.question,
                standalone_question=item.question,
                answer=item.answer,
                mode=item.mode,
                retrieved=[chunk],
                channel_id="C1" if item.platform == "slack" else "",
                thread_id=item.thread,
                message_id=f"m{n}" if item.platform == "slack" else "",
                found=item.found,
                prompt_messages=_prompt(item.question, item.context)
                if item.mode == "llm" and item.found
                else [],
                user_id="U0",
            )
        )
        for voter, vote in enumerate(item.votes):
            store.rate(item.interaction_id, user_id=f"U{voter}", value=vote, source="reaction")
    return store


def _export(
    engine: Engine, embedder: LocalE5Embeddings, out: Path, format_name: str, **options: Any
) -> dict[str, Any]:
    return export_dataset(
        engine,
        "acme",
        out,
        ExportOptions(format=format_name, **options),
        embed=embedder.embed_queries,
        clock=lambda: NOW,
        known_workspaces={"acme", "other"},
    )


def _load(out: Path, manifest: dict[str, Any], cache: Path) -> datasets.DatasetDict:
    files = {info["split"]: str(out / name) for name, info in manifest["files"].items()}
    return datasets.load_dataset("json", data_files=files, cache_dir=str(cache))


def _rows(out: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for path in sorted(out.glob("*.jsonl"))
    }


def _question(messages: list[dict[str, str]]) -> str:
    return messages[-1]["content"].rsplit("Question: ", 1)[-1].strip()


@pytest.mark.parametrize("format_name", FORMATS)
def test_every_format_loads_with_datasets_as_trl_and_openai_document_it(
    engine: Engine, embedder: LocalE5Embeddings, tmp_path: Path, format_name: str
):
    _plant(engine, _core())
    out = tmp_path / format_name

    manifest = _export(engine, embedder, out, format_name)
    loaded = _load(out, manifest, tmp_path / "hf-cache")

    expected_rows = {"sft": 6, "openai-sft": 6, "kto": 9, "dpo": 2, "openai-dpo": 2}[format_name]
    assert sum(len(split) for split in loaded.values()) == expected_rows
    for split, dataset in loaded.items():
        assert dataset.features == EXPECTED_FEATURES[format_name], split
        assert len(dataset) == manifest["counts"][split]["rows"]
        for row in dataset:
            _check_roles(format_name, row)
    for name, info in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == info["sha256"]
    assert manifest["format"] == format_name and manifest["workspace"] == "acme"
    assert manifest["created_at"] == NOW.isoformat()
    assert manifest["source"] == {
        "answers": 12, "considered": 12, "liked": 7, "disliked": 3, "tied_left_out": 1,
        "unrated_left_out": 1, "duplicates_merged": 1, "examples": 9, "prompts_recorded": 7,
        "prompts_rebuilt": 2, "implicitly_labelled": 0, "reference_answers": 0,
    }  # fmt: skip
    rules = manifest["rules"]
    assert "ties" in rules["conflict"] and rules["similarity_threshold"] == 0.95
    assert rules["pii"]["enabled"] and {r["name"] for r in rules["pii"]["rules"]} >= {
        "email", "phone_kr", "openai_key", "slack_token", "platform_mention", "at_mention",
    }  # fmt: skip
    assert rules["split_ratios"] == {"train": 0.8, "validation": 0.1, "test": 0.1}


def _check_roles(format_name: str, row: dict[str, Any]) -> None:
    if format_name in ("sft", "openai-sft"):
        roles = [m["role"] for m in row["messages"]]
        assert roles[0] == "system" and roles[-2:] == ["user", "assistant"]
        return
    prompt = row["input"]["messages"] if format_name == "openai-dpo" else row["prompt"]
    assert prompt[0]["role"] == "system" and prompt[-1]["role"] == "user"
    assert prompt[-1]["content"].startswith("<context-")  # the retrieved context the model saw
    answers = {
        "kto": ["completion"],
        "dpo": ["chosen", "rejected"],
        "openai-dpo": ["preferred_output", "non_preferred_output"],
    }[format_name]
    for key in answers:
        assert [m["role"] for m in row[key]] == ["assistant"]


def test_labels_pairs_duplicates_and_rebuilt_prompts(
    engine: Engine, embedder: LocalE5Embeddings, tmp_path: Path
):
    _plant(engine, _core())
    _export(engine, embedder, tmp_path / "kto", "kto")
    _export(engine, embedder, tmp_path / "dpo", "dpo")

    kto = [row for rows in _rows(tmp_path / "kto").values() for row in rows]
    labels = {_question(r["prompt"]): r["label"] for r in kto}
    assert labels["How long is the password reset link valid?"] is True
    assert labels["세금계산서 발행일이 언제인가요?"] is False
    assert labels["Who won the football world cup in 2002?"] is False
    assert "Can I get a refund?" not in labels  # 👍 and 👎: a tie is left out
    assert "Where can I download invoices?" not in labels  # unrated
    assert sum(normalize_question(q) == "what is the api rate limit" for q in labels) == 1
    extractive = next(r for r in kto if "two-factor" in _question(r["prompt"]))
    assert "Turn on 2FA from Profile > Security." in extractive["prompt"][-1]["content"]

    pairs = [row for rows in _rows(tmp_path / "dpo").values() for row in rows]
    by_question = {_question(p["prompt"]): p for p in pairs}
    assert set(by_question) == {  # the prompt is the liked answer's
        "How long is the password reset link valid?",
        "세금계산서는 언제 발행되나요?",
    }
    reset = by_question["How long is the password reset link valid?"]
    assert reset["chosen"][0]["content"] == "The reset link expires after 30 minutes [1]."
    assert reset["rejected"][0]["content"] == "The link never expires."
    tax = by_question["세금계산서는 언제 발행되나요?"]
    assert tax["rejected"][0]["content"] == "잘 모르겠습니다."


def test_pii_is_scrubbed_by_default_and_kept_with_no_scrub(
    engine: Engine, embedder: LocalE5Embeddings, tmp_path: Path
):
    _plant(engine, _core())

    _export(engine, embedder, tmp_path / "scrubbed", "sft")
    _export(engine, embedder, tmp_path / "raw", "sft", scrub=False)

    scrubbed = "".join(
        p.read_text(encoding="utf-8") for p in (tmp_path / "scrubbed").glob("*.jsonl")
    )
    raw = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "raw").glob("*.jsonl"))
    for secret in PLANTED:
        assert json.dumps(secret)[1:-1] not in scrubbed, secret
        assert json.dumps(secret)[1:-1] in raw, secret
    for placeholder in ("[EMAIL]", "[PHONE]", "[SECRET]", "[USER]"):
        assert placeholder in scrubbed
    assert "30 minutes" in scrubbed and "매월 10일" in scrubbed  # ordinary text untouched


def test_an_export_holds_one_workspace_only(
    engine: Engine, embedder: LocalE5Embeddings, tmp_path: Path
):
    _plant(engine, _core())

    manifest = _export(engine, embedder, tmp_path / "kto", "kto")

    text = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "kto").glob("*.jsonl"))
    assert "OTHER-WORKSPACE-MARKER" not in text
    assert manifest["source"]["answers"] == 12  # the other workspace's answer is not counted
    with pytest.raises(FeedbackError, match="unknown workspace 'nobody'"):
        export_dataset(
            engine, "nobody", tmp_path / "x", ExportOptions(format="kto"),
            embed=embedder.embed_queries, clock=lambda: NOW, known_workspaces={"acme"},
        )  # fmt: skip
    with pytest.raises(FeedbackError, match="unknown export format"):
        ExportOptions(format="csv")


def test_splits_never_share_a_conversation_or_a_near_duplicate_question(
    engine: Engine, embedder: LocalE5Embeddings, tmp_path: Path
):
    filler = [Planted(f"f{n}", q, f"Answer {n} [1].", [1]) for n, q in enumerate(FILLER)]
    planted = _core() + filler
    _plant(engine, planted)
    conversation_of = {p.question: (p.platform, p.thread or str(p.interaction_id)) for p in planted}

    options = {"ratios": SplitRatios(0.5, 0.25, 0.25), "scrub": False}
    manifest = _export(engine, embedder, tmp_path / "kto", "kto", **options)
    again = _export(engine, embedder, tmp_path / "kto-again", "kto", **options)

    assert manifest["files"] == again["files"]  # same data, same seed: the same bytes
    rows = _rows(tmp_path / "kto")
    assert set(rows) == {"train", "validation", "test"}
    split_of: dict[str, str] = {}
    for split, items in rows.items():
        for row in items:
            split_of[_question(row["prompt"])] = split
    conversations: dict[tuple[str, str], set[str]] = {}
    for question, split in split_of.items():
        conversations.setdefault(conversation_of[question], set()).add(split)
    assert all(len(splits) == 1 for splits in conversations.values())
    questions = sorted(split_of)
    vectors = np.asarray(embedder.embed_queries(questions))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for i, a in enumerate(questions):
        for j in range(i + 1, len(questions)):
            if split_of[a] != split_of[questions[j]]:
                assert float(vectors[i] @ vectors[j]) < 0.95, (a, questions[j])
                assert normalize_question(a) != normalize_question(questions[j])


def test_near_duplicate_questions_are_kept_in_one_split_where_the_hash_alone_would_part_them():
    conversations = ["slack\x1fC1\x1ft1", "slack\x1fC1\x1ft2"]
    ratios = SplitRatios(0.5, 0.25, 0.25)
    alone = group_ids(conversations, ["q one", "q two"], [])
    seed = next(
        f"seed-{n}" for n in range(1000)
        if len(set(assign_splits(conversations, alone, ratios, f"seed-{n}"))) == 2
    )  # fmt: skip

    joined = group_ids(conversations, ["q one", "q two"], [(0, 1, 0.97)])

    assert len(set(assign_splits(conversations, joined, ratios, seed))) == 1


# --- implicit labels: signals and teammates' replies ------------------------------------------

TEAMMATE_REPLY = (
    "Resets are under Settings > Security; the link lasts 24 hours. Mail me at lee@acme.example"
)


def _implicit_workspace(engine: Engine) -> tuple[SqlFeedbackStore, list[Planted]]:
    """Answers with signals: a teammate answered the first (chosen over the bot), only agreed
    with the second, answered the third after the asker rated it up, and the fourth was
    thanked; the fifth is rated down and has no signal."""
    items = [
        Planted("t1", "How do I reset my password?", "Use the form.", []),
        Planted("t2", "How do I export my data?", "Settings > Export.", []),
        Planted("t3", "Where is the invoice?", "Billing > History.", [1]),
        Planted("t4", "How do refunds work?", "Request one within 14 days.", []),
        Planted("t5", "What is the API rate limit?", "There is none.", [-1]),
    ]
    store = _plant(engine, items)
    when = NOW - timedelta(days=1)

    def signal(item: Planted, kind: str, weight: float, event: str) -> None:
        assert item.interaction_id is not None
        store.record_signal(item.interaction_id, workspace="acme", kind=kind, weight=weight,
                            platform="slack", event_id=event, event_at=when)  # fmt: skip

    def reply(item: Planted, text: str, agrees: bool, event: str) -> None:
        assert item.interaction_id is not None
        store.record_reference(item.interaction_id, workspace="acme", text=text, agrees=agrees,
                               platform="slack", event_id=event, event_at=when)  # fmt: skip
        signal(
            item, "teammate_agreed" if agrees else "teammate_answer", 0.5 if agrees else -1, event
        )

    signal(items[0], "rephrase", -0.5, "e1")
    reply(items[0], "let me check", False, "e2")
    reply(items[0], TEAMMATE_REPLY, False, "e3")
    signal(items[0], "acknowledgement", 1.0, "e4")
    reply(items[1], "+1", True, "e5")
    reply(items[2], "Also under Billing > Documents.", False, "e6")
    signal(items[3], "acknowledgement", 1.0, "e7")
    return store, items


def _all_rows(out: Path) -> list[dict[str, Any]]:
    return [row for rows in _rows(out).values() for row in rows]


def test_a_teammates_reply_is_chosen_over_the_bots_answer_with_its_provenance(
    engine: Engine, embedder: LocalE5Embeddings, tmp_path: Path
):
    _implicit_workspace(engine)

    manifest = _export(engine, embedder, tmp_path / "dpo", "dpo", labels="implicit")

    [row] = _all_rows(tmp_path / "dpo")
    assert row["chosen"][0]["content"].startswith("Resets are under Settings > Security")
    assert "lee@acme.example" not in row["chosen"][0]["content"]  # scrubbed as ever
    assert row["rejected"][0]["content"] == "Use the form."
    assert _question(row["prompt"]) == "How do I reset my password?"
    assert row["label_source"] == "implicit"
    assert row["signal_kinds"] == [
        "rephrase", "teammate_answer", "teammate_answer", "acknowledgement"
    ]  # fmt: skip
    assert row["signal_weights"] == [-0.5, -1.0, -1.0, 1.0]
    assert manifest["rows_per_label_source"] == {"explicit": 0, "implicit": 1}
    assert manifest["labels"] == "implicit"
    loaded = _load(tmp_path / "dpo", manifest, tmp_path / "hf-cache")
    assert sum(len(split) for split in loaded.values()) == 1


def test_explicit_stays_the_default_and_all_adds_implicit_rows_without_mixing(
    engine: Engine, embedder: LocalE5Embeddings, tmp_path: Path
):
    _implicit_workspace(engine)

    explicit = _export(engine, embedder, tmp_path / "e", "kto")
    both = _export(engine, embedder, tmp_path / "a", "kto", labels="all")
    implicit = _export(engine, embedder, tmp_path / "i", "kto", labels="implicit")

    assert explicit["rows_per_label_source"] == {"explicit": 2, "implicit": 0}
    assert {r["label_source"] for r in _all_rows(tmp_path / "e")} == {"explicit"}
    # t1 (net -1.5) disliked and t4 (+1) liked from signals; t3 keeps its explicit 👍 although a
    # teammate answered it, t2's agreement alone (+0.5) labels it liked.
    by_question = {_question(r["prompt"]): r for r in _all_rows(tmp_path / "a")}
    assert by_question["Where is the invoice?"]["label_source"] == "explicit"
    assert by_question["Where is the invoice?"]["label"] is True
    assert by_question["How do I reset my password?"]["label"] is False
    assert by_question["How do refunds work?"]["label"] is True
    assert by_question["How do refunds work?"]["signal_kinds"] == ["acknowledgement"]
    assert both["rows_per_label_source"] == {"explicit": 2, "implicit": 3}
    assert implicit["rows_per_label_source"] == {"explicit": 0, "implicit": 4}
    assert sum(c["rows"] for c in both["counts"].values()) == 5


def test_no_pair_when_the_answer_was_rated_up_or_the_teammate_only_agreed(
    engine: Engine, embedder: LocalE5Embeddings, tmp_path: Path
):
    _implicit_workspace(engine)

    manifest = _export(engine, embedder, tmp_path / "o", "openai-dpo", labels="all")

    rows = _all_rows(tmp_path / "o")
    rejected = {r["non_preferred_output"][0]["content"] for r in rows}
    assert "Settings > Export." not in rejected and "Billing > History." not in rejected
    assert "Use the form." in rejected
    assert all(set(r) == {"input", "preferred_output", "non_preferred_output"} for r in rows)
    sources = [p["label_source"] for split in manifest["row_labels"].values() for p in split]
    assert sources.count("implicit") == 1


def test_an_unknown_label_source_is_refused_in_one_line():
    with pytest.raises(FeedbackError, match="unknown label source 'some'"):
        ExportOptions(format="dpo", labels="some")
