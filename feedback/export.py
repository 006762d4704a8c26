"""Exports one workspace's rated answers as fine-tuning data (see :mod:`feedback.formats`).

The rules, recorded in every ``manifest.json`` and in the README:

- **Rating of an answer**: the net of its users' current ratings (👍 − 👎): positive is liked,
  negative disliked; a tie is a conflict the data cannot settle, and the answer is left out, as
  are unrated answers.
- **Duplicates**: answers with the same normalized question and the same answer text are one
  example; their ratings are added up before the rule above is applied.
- **DPO pairs**: each disliked answer is paired with the liked answer to the most similar
  question (same normalized question, or cosine of the query embeddings at or above the
  threshold), ties to the older answer; the prompt is the liked answer's.
- **Splits**: by group (see :mod:`feedback.splits`): a conversation, or a set of near-duplicate
  questions, is never split across train / validation / test.
- **PII**: scrubbed by default (:mod:`feedback.pii`).
- Only splits with rows get a file (``datasets`` refuses an empty JSON file); the manifest
  lists every split with its count.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from feedback.answers import RatedAnswer, load_answers, normalize_question, require_workspace
from feedback.errors import FeedbackError
from feedback.formats import (
    Message,
    Row,
    dpo_row,
    kto_row,
    openai_dpo_row,
    prompt_of,
    sft_row,
)
from feedback.pii import Scrubber
from feedback.splits import (
    SPLITS,
    SplitRatios,
    assign_splits,
    group_ids,
    similar_pairs,
    unit_vectors,
)

FORMATS = ("sft", "kto", "dpo", "openai-sft", "openai-dpo")
Embed = Callable[[Sequence[str]], list[list[float]]]

RULES = {
    "conflict": "net of the users' current ratings (likes - dislikes): > 0 liked, < 0 disliked; "
    "ties and unrated answers are left out",
    "duplicates": "same normalized question and same answer text: one example, ratings added "
    "up before the conflict rule",
    "dpo_pairs": "each disliked answer with the liked answer to the most similar question (same "
    "normalized question, or query-embedding cosine >= similarity_threshold; ties to the "
    "older answer); the prompt is the liked answer's",
    "split_unit": "groups joined by conversation (workspace, platform, channel, thread), same "
    "normalized question, or cosine >= similarity_threshold; a group goes to one split, chosen "
    "by sha256(seed, the group's smallest conversation key)",
    "prompt": "the messages sent to the model; for answers no model wrote (extractive or not "
    "found), the same template filled with the retrieved context stored with the answer",
}


@dataclass(frozen=True, slots=True)
class ExportOptions:
    format: str
    scrub: bool = True
    ratios: SplitRatios = field(default_factory=SplitRatios)
    seed: str = "supportbot"
    similarity: float = 0.95
    llm_only: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise FeedbackError(
                f"unknown export format {self.format!r}; choose one of {', '.join(FORMATS)}"
            )
        if not 0.0 < self.similarity <= 1.0:
            raise FeedbackError("the DPO similarity threshold must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class _Example:
    answer: RatedAnswer
    prompt: list[Message]
    split: str


def export_dataset(
    engine: Engine,
    workspace: str,
    out_dir: Path,
    options: ExportOptions,
    *,
    embed: Embed,
    clock: Callable[[], datetime],
    known_workspaces: set[str],
) -> dict[str, Any]:
    """Write the split files and ``manifest.json`` into ``out_dir``; return the manifest."""
    require_workspace(engine, workspace, known_workspaces)
    answers = load_answers(engine, workspace)
    considered = [a for a in answers if a.mode == "llm"] if options.llm_only else answers
    labels = Counter(a.label for a in considered)
    kept, merged = _deduplicated([a for a in considered if a.label in ("liked", "disliked")])
    scrub = Scrubber(enabled=options.scrub)

    conversations = [a.conversation for a in kept]
    units = unit_vectors(embed([a.standalone_question for a in kept]) if kept else [])
    similar = similar_pairs(units, options.similarity) if kept else []
    questions = [normalize_question(a.standalone_question) for a in kept]
    groups = group_ids(conversations, questions, similar)
    splits = assign_splits(conversations, groups, options.ratios, options.seed)
    examples = []
    recorded = 0
    for answer, split in zip(kept, splits, strict=True):
        prompt, was_recorded = prompt_of(answer)
        recorded += was_recorded
        examples.append(_Example(answer, prompt, split))

    rows, counts = _rows(options.format, examples, similar, scrub)
    files = _write(out_dir, rows)
    manifest: dict[str, Any] = {
        "format": options.format,
        "workspace": workspace,
        "created_at": clock().isoformat(),
        "files": files,
        "counts": counts,
        "source": {
            "answers": len(answers),
            "considered": len(considered),
            "liked": labels["liked"],
            "disliked": labels["disliked"],
            "tied_left_out": labels["tied"],
            "unrated_left_out": labels["unrated"],
            "duplicates_merged": merged,
            "examples": len(kept),
            "prompts_recorded": recorded,
            "prompts_rebuilt": len(kept) - recorded,
        },
        "rules": {
            **RULES,
            "modes": "llm only" if options.llm_only else "all (llm and extractive)",
            "similarity_threshold": options.similarity,
            "split_ratios": {
                "train": options.ratios.train,
                "validation": options.ratios.validation,
                "test": options.ratios.test,
            },
            "seed": options.seed,
            "pii": scrub.describe(),
        },
    }
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return manifest


def _deduplicated(answers: list[RatedAnswer]) -> tuple[list[RatedAnswer], int]:
    """One example per (question, answer text), the oldest standing for all; ratings summed."""
    first: dict[tuple[str, str], RatedAnswer] = {}
    merged = 0
    for answer in answers:
        key = (normalize_question(answer.question), " ".join(answer.answer.split()))
        if key in first:
            held = first[key]
            first[key] = replace(
                held, likes=held.likes + answer.likes, dislikes=held.dislikes + answer.dislikes
            )
            merged += 1
        else:
            first[key] = answer
    return [a for a in first.values() if a.label in ("liked", "disliked")], merged


def _rows(
    format_name: str,
    examples: list[_Example],
    similar: Sequence[tuple[int, int, float]],
    scrub: Scrubber,
) -> tuple[dict[str, list[Row]], dict[str, dict[str, int]]]:
    rows: dict[str, list[Row]] = {split: [] for split in SPLITS}
    labels: dict[str, Counter[str]] = {split: Counter() for split in SPLITS}
    if format_name in ("sft", "openai-sft"):
        for example in examples:
            if example.answer.label == "liked":
                rows[example.split].append(sft_row(example.prompt, example.answer.answer, scrub))
                labels[example.split]["liked"] += 1
    elif format_name == "kto":
        for example in examples:
            liked = example.answer.label == "liked"
            rows[example.split].append(kto_row(example.prompt, example.answer.answer, liked, scrub))
            labels[example.split]["liked" if liked else "disliked"] += 1
    else:
        build = dpo_row if format_name == "dpo" else openai_dpo_row
        seen: set[str] = set()
        for chosen, rejected in _pairs(examples, similar):
            row = build(chosen.prompt, chosen.answer.answer, rejected.answer.answer, scrub)
            fingerprint = json.dumps(row, sort_keys=True, ensure_ascii=False)
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            rows[rejected.split].append(row)
            labels[rejected.split]["pairs"] += 1
    counts = {split: {"rows": len(rows[split]), **labels[split]} for split in SPLITS}
    return rows, counts


def _pairs(
    examples: list[_Example], similar: Sequence[tuple[int, int, float]]
) -> list[tuple[_Example, _Example]]:
    """(liked, disliked) pairs: every disliked answer with its best liked match."""
    # disliked index -> ((similarity, -liked id), liked index): the highest rank wins.
    chosen_for: dict[int, tuple[tuple[float, int], int]] = {}

    def offer(disliked: int, liked: int, score: float) -> None:
        rank = (score, -examples[liked].answer.id)
        if disliked not in chosen_for or rank > chosen_for[disliked][0]:
            chosen_for[disliked] = (rank, liked)

    for i, j, score in similar:
        label_i, label_j = examples[i].answer.label, examples[j].answer.label
        if label_i == "disliked" and label_j == "liked":
            offer(i, j, score)
        elif label_i == "liked" and label_j == "disliked":
            offer(j, i, score)
    return [(examples[liked], examples[d]) for d, (_, liked) in sorted(chosen_for.items())]


def _write(out_dir: Path, rows: dict[str, list[Row]]) -> dict[str, dict[str, Any]]:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FeedbackError(f"cannot create the output folder {out_dir}: {e.strerror}") from e
    files: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        path = out_dir / f"{split}.jsonl"
        if not rows[split]:
            path.unlink(missing_ok=True)  # no stale file of an earlier export
            continue
        data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows[split])
        encoded = data.encode("utf-8")
        path.write_bytes(encoded)
        files[path.name] = {
            "split": split,
            "rows": len(rows[split]),
            "sha256": hashlib.sha256(encoded).hexdigest(),
        }
    return files
