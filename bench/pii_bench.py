"""PII scrubber benchmark: span-level precision and recall per kind on a labelled set.

Run from the repository root::

    .venv/bin/python bench/pii_bench.py [--data tests/data/pii_labelled.jsonl] [--errors]

The labelled set (``tests/data/pii_labelled.jsonl``, invented data) holds one line of text
per row, Korean and English, with the personal data in it::

    {"text": "신한 110-123-456789 김민수",
     "spans": [{"kind": "account", "start": 3, "end": 17, "text": "110-123-456789"}]}

Rows without spans are true negatives (order numbers, dates, prices, versions, ISBNs,
tracking and business numbers…). A span the scrubber finds counts as a true positive only
if its kind, start and end are exactly a labelled span's (strict matching: a span one digit
short is a false positive *and* a false negative). ``leaked`` counts labelled spans whose
text is still in the scrubbed output, whatever kind the scrubber gave them: what a reader of
the export would still see. ``tests/test_pii_bench.py`` asserts the figures stay at or above
the ones measured.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from feedback.pii import Scrubber  # noqa: E402

DEFAULT_DATA = REPO / "tests" / "data" / "pii_labelled.jsonl"


@dataclass(frozen=True, slots=True)
class Labelled:
    text: str
    spans: tuple[tuple[str, int, int], ...]  # (kind, start, end)


@dataclass
class Scores:
    """Counts per kind; precision and recall are None where nothing was found or labelled."""

    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)
    labelled: int = 0
    leaked: int = 0
    lines: int = 0
    negative_lines: int = 0
    negative_lines_touched: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return sorted(set(self.tp) | set(self.fp) | set(self.fn))

    def precision(self, kind: str | None = None) -> float | None:
        tp, fp = self._sum(self.tp, kind), self._sum(self.fp, kind)
        return tp / (tp + fp) if tp + fp else None

    def recall(self, kind: str | None = None) -> float | None:
        tp, fn = self._sum(self.tp, kind), self._sum(self.fn, kind)
        return tp / (tp + fn) if tp + fn else None

    @staticmethod
    def _sum(counts: Counter[str], kind: str | None) -> int:
        return counts[kind] if kind is not None else sum(counts.values())


def load_labelled(path: Path = DEFAULT_DATA) -> list[Labelled]:
    """The rows of a labelled JSONL file; each span's offsets are checked against its text."""
    rows: list[Labelled] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        text = row["text"]
        spans = []
        for s in row["spans"]:
            if text[s["start"] : s["end"]] != s["text"]:
                raise ValueError(f"{path}:{number}: span {s['text']!r} is not at its offsets")
            spans.append((s["kind"], s["start"], s["end"]))
        rows.append(Labelled(text, tuple(spans)))
    return rows


def evaluate(scrubber: Scrubber, rows: Iterable[Labelled]) -> Scores:
    scores = Scores()
    for row in rows:
        scores.lines += 1
        gold = set(row.spans)
        found = {(f.kind, f.start, f.end) for f in scrubber.find(row.text)}
        for kind, _, _ in found & gold:
            scores.tp[kind] += 1
        for kind, start, end in found - gold:
            scores.fp[kind] += 1
            scores.errors.append(f"FP {kind:8} {row.text[start:end]!r} in {row.text!r}")
        for kind, start, end in gold - found:
            scores.fn[kind] += 1
            scores.errors.append(f"FN {kind:8} {row.text[start:end]!r} in {row.text!r}")
        scores.labelled += len(gold)
        scrubbed = scrubber(row.text)
        scores.leaked += sum(row.text[start:end] in scrubbed for _, start, end in gold)
        if not gold:
            scores.negative_lines += 1
            scores.negative_lines_touched += scrubbed != row.text
    return scores


def public_texts(shared_data: Path) -> list[str]:
    """The contexts and questions of KorQuAD 1.0 dev (Korean Wikipedia) and PolicyQA dev
    (English privacy policies), SQuAD format: public text without personal numbers."""
    texts: list[str] = []
    for path in (
        shared_data / "retrieval" / "korquad_v1_dev" / "KorQuAD_v1.0_dev.json",
        shared_data / "retrieval" / "policyqa_dev" / "dev.json",
    ):
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                texts.append(paragraph["context"])
                texts += [qa["question"] for qa in paragraph["qas"]]
    return list(dict.fromkeys(texts))


def findings(scrubber: Scrubber, texts: Iterable[str]) -> Counter[str]:
    """How many spans of each kind the scrubber finds in ``texts``."""
    return Counter(f.kind for text in texts for f in scrubber.find(text))


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def table(scores: Scores) -> str:
    """A Markdown table: one row per kind and one for all kinds together."""
    lines = [
        "| kind | labelled | found | TP | FP | FN | precision | recall |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in [*scores.kinds, None]:
        tp, fp, fn = (Scores._sum(c, kind) for c in (scores.tp, scores.fp, scores.fn))
        name = kind or "**all**"
        lines.append(
            f"| {name} | {tp + fn} | {tp + fp} | {tp} | {fp} | {fn} | "
            f"{_cell(scores.precision(kind))} | {_cell(scores.recall(kind))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--errors", action="store_true", help="list every FP and FN")
    args = parser.parse_args(argv)
    rows = load_labelled(args.data)
    scores = evaluate(Scrubber(), rows)
    print(
        f"{scores.lines} lines ({scores.negative_lines} without personal data), "
        f"{scores.labelled} labelled spans; strict span matching (kind, start, end)\n"
    )
    print(table(scores))
    print(
        f"\nleaked (labelled text still in the scrubbed output): {scores.leaked} of "
        f"{scores.labelled}; lines without personal data changed: "
        f"{scores.negative_lines_touched} of {scores.negative_lines}"
    )
    shared = REPO.parent / "shared" / "data"
    if (shared / "retrieval").is_dir():
        texts = public_texts(shared)
        found = findings(Scrubber(), texts)
        size = sum(len(t) for t in texts)
        print(
            f"\npublic text without personal numbers (KorQuAD 1.0 dev, PolicyQA dev: "
            f"{len(texts)} texts, {size:,} characters), spans found per kind: "
            + (", ".join(f"{k} {n}" for k, n in sorted(found.items())) or "none")
        )
    if args.errors:
        print("\n" + "\n".join(scores.errors))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
