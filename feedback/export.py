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
- **Labels** (``--labels``): ``explicit`` (the default) uses the ratings above only;
  ``implicit`` uses only what conversations said (:mod:`feedback.signals`: the sum of an
  answer's signal weights labels it, and a teammate's reply in the answer's thread makes a DPO
  pair, the reply *chosen* and the bot's answer *rejected*, unless the asker rated the answer
  up or the reply only agreed with it); ``all`` uses both, an answer's explicit label standing
  over its implicit one. Every row says where its label came from (``label_source``,
  ``signal_kinds``, ``signal_weights``; for OpenAI rows, which take no extra keys, in the
  manifest's ``row_labels``), and the manifest counts rows per source.
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
from feedback.signals import ImplicitFeedback, load_implicit
from feedback.splits import (
    SPLITS,
    SplitRatios,
    assign_splits,
    group_ids,
    similar_pairs,
    unit_vectors,
)

FORMATS = ("sft", "kto", "dpo", "openai-sft", "openai-dpo")
LABELS = ("explicit", "implicit", "all")
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
    "implicit_labels": "sum of the answer's signal weights (acknowledgement +1, resolved +1, "
    "teammate_agreed +0.5, rephrase -0.5, frustration/handoff_request/disapproval/"
    "teammate_answer -1): > 0 liked, < 0 disliked; an explicit label stands over it (--labels "
    "all)",
    "implicit_pairs": "a teammate's reply in the answer's thread (the longest that does more "
    "than agree) is chosen and the bot's answer rejected, unless the answer is rated up or a "
    "teammate only agreed with it; the prompt is the bot answer's",
}


@dataclass(frozen=True, slots=True)
class ExportOptions:
    format: str
    scrub: bool = True
    ratios: SplitRatios = field(default_factory=SplitRatios)
    seed: str = "supportbot"
    similarity: float = 0.95
    llm_only: bool = False
    labels: str = "explicit"

    def __post_init__(self) -> None:
        if self.labels not in LABELS:
            raise FeedbackError(
                f"unknown label source {self.labels!r}; choose one of {', '.join(LABELS)}"
            )
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
    label: str = ""  # liked / disliked, from ``source``
    source: str = "explicit"
    implicit: ImplicitFeedback | None = None

    def provenance(self, source: str | None = None) -> dict[str, Any]:
        """Where the example's label (or, ``source="implicit"``, its teammate pair) came from,
        as every row of it says."""
        if (source or self.source) == "explicit":
            return {
                "label_source": "explicit",
                "signal_kinds": ["rating"],
                "signal_weights": [float(self.answer.net)],
            }
        assert self.implicit is not None
        return {
            "label_source": "implicit",
            "signal_kinds": list(self.implicit.kinds),
            "signal_weights": list(self.implicit.weights),
        }


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
    explicit: list[RatedAnswer] = []
    merged = 0
    if options.labels != "implicit":
        rated = [a for a in considered if a.label in ("liked", "disliked")]
        explicit, merged = _deduplicated(rated)
    implicit = load_implicit(engine, workspace) if options.labels != "explicit" else {}
    taken = {a.id for a in explicit}
    from_signals = [
        a
        for a in considered
        if a.id in implicit
        and a.id not in taken
        and (implicit[a.id].label is not None or implicit[a.id].reference is not None)
    ]
    kept = explicit + from_signals
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
        if answer.id in taken:
            feedback = implicit.get(answer.id)
            examples.append(_Example(answer, prompt, split, answer.label, "explicit", feedback))
        else:
            feedback = implicit[answer.id]
            label = feedback.label or ""
            examples.append(_Example(answer, prompt, split, label, "implicit", feedback))

    rows, counts, provenance = _rows(options.format, examples, similar, scrub)
    files = _write(out_dir, rows)
    per_source = Counter(p["label_source"] for split in SPLITS for p in provenance[split])
    manifest: dict[str, Any] = {
        "format": options.format,
        "workspace": workspace,
        "created_at": clock().isoformat(),
        "files": files,
        "counts": counts,
        "labels": options.labels,
        "rows_per_label_source": {
            "explicit": per_source["explicit"],
            "implicit": per_source["implicit"],
        },
        "row_labels": provenance,
        "source": {
            "answers": len(answers),
            "considered": len(considered),
            "liked": labels["liked"],
            "disliked": labels["disliked"],
            "tied_left_out": labels["tied"],
            "unrated_left_out": labels["unrated"],
            "duplicates_merged": merged,
            "examples": len(kept),
            "implicitly_labelled": len(from_signals),
            "reference_answers": sum(1 for a in from_signals if implicit[a.id].reference),
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
) -> tuple[dict[str, list[Row]], dict[str, dict[str, int]], dict[str, list[dict[str, Any]]]]:
    """The rows per split, their counts, and where each row's label came from (row order)."""
    rows: dict[str, list[Row]] = {split: [] for split in SPLITS}
    provenance: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    labels: dict[str, Counter[str]] = {split: Counter() for split in SPLITS}
    trl = not format_name.startswith("openai")

    def add(split: str, row: Row, origin: dict[str, Any], label: str) -> None:
        rows[split].append({**row, **origin} if trl else row)
        provenance[split].append(origin)
        labels[split][label] += 1

    if format_name in ("sft", "openai-sft"):
        for example in examples:
            if example.label == "liked":
                row = sft_row(example.prompt, example.answer.answer, scrub)
                add(example.split, row, example.provenance(), "liked")
    elif format_name == "kto":
        for example in examples:
            if example.label in ("liked", "disliked"):
                liked = example.label == "liked"
                row = kto_row(example.prompt, example.answer.answer, liked, scrub)
                add(example.split, row, example.provenance(), example.label)
    else:
        build = dpo_row if format_name == "dpo" else openai_dpo_row
        seen: set[str] = set()
        pairs = [
            (chosen.prompt, chosen.answer.answer, rejected, "explicit")
            for chosen, rejected in _pairs(examples, similar)
            if chosen.source == "explicit" and rejected.source == "explicit"
        ]
        pairs += [
            (e.prompt, reference, e, "implicit")
            for e in examples
            if (reference := _teammate_choice(e)) is not None
        ]
        for prompt, chosen_text, rejected, source in pairs:
            row = build(prompt, chosen_text, rejected.answer.answer, scrub)
            fingerprint = json.dumps(row, sort_keys=True, ensure_ascii=False)
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            add(rejected.split, row, rejected.provenance(source), "pairs")
    counts = {split: {"rows": len(rows[split]), **labels[split]} for split in SPLITS}
    return rows, counts, provenance


def _teammate_choice(example: _Example) -> str | None:
    """The teammate's reply that beats the bot's answer, or None (see ``implicit_pairs``)."""
    feedback = example.implicit
    if feedback is None or feedback.reference is None:
        return None
    if example.answer.net > 0 or feedback.agreements:
        return None
    return feedback.reference


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
