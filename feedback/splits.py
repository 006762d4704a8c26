"""Grouping answers that must stay together, and the deterministic train/validation/test split.

A model evaluated on a question it was trained on looks better than it is. So the unit of the
split is not the answer but the *group*: answers of one conversation, and answers to the same
or a near-duplicate question (cosine of the query embeddings at or above the threshold), are
joined, transitively, and every group goes to one split as a whole. Which split is decided by a
hash of the group's smallest conversation key and a seed: the same data and seed always give
the same files, on any machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True, slots=True)
class SplitRatios:
    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1

    def __post_init__(self) -> None:
        parts = (self.train, self.validation, self.test)
        if any(p < 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-6:
            raise ValueError("split ratios must be non-negative and add up to 1")

    @classmethod
    def parse(cls, text: str) -> SplitRatios:
        """``"80/10/10"`` (or ``"0.8,0.1,0.1"``), in train/validation/test order."""
        pieces = [p for p in text.replace(",", "/").split("/") if p.strip()]
        try:
            values = [float(p) for p in pieces]
        except ValueError:
            values = []
        if len(values) != 3 or sum(values) <= 0:
            raise ValueError(f"split ratios {text!r}: give three numbers, like 80/10/10")
        total = sum(values)
        return cls(*(v / total for v in values))


class UnionFind:
    def __init__(self, size: int) -> None:
        self._parent = list(range(size))

    def find(self, item: int) -> int:
        root = item
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[item] != root:
            self._parent[item], item = root, self._parent[item]
        return root

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self._parent[max(root_a, root_b)] = min(root_a, root_b)


def unit_vectors(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.size == 0:
        return matrix.reshape(0, 0)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def similar_pairs(
    units: np.ndarray, threshold: float, *, block: int = 256
) -> list[tuple[int, int, float]]:
    """Index pairs ``(i, j)``, ``i < j``, whose cosine is at least ``threshold``.

    Computed in blocks of rows, so memory stays at ``block × n`` whatever the number of answers.
    """
    pairs: list[tuple[int, int, float]] = []
    count = units.shape[0]
    for start in range(0, count, block):
        scores = units[start : start + block] @ units.T
        rows, cols = np.nonzero(scores >= threshold)
        for row, column in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + row
            if i < column:
                pairs.append((i, column, float(scores[row, column])))
    return pairs


def group_ids(
    conversations: Sequence[str],
    question_keys: Sequence[str],
    similar: Sequence[tuple[int, int, float]],
) -> list[int]:
    """The group of every item: joined by conversation, same question, or similarity."""
    groups = UnionFind(len(conversations))
    first_of: dict[tuple[str, str], int] = {}
    for index, (conversation, question) in enumerate(
        zip(conversations, question_keys, strict=True)
    ):
        for key in (("conversation", conversation), ("question", question)):
            if key in first_of:
                groups.union(first_of[key], index)
            else:
                first_of[key] = index
    for i, j, _ in similar:
        groups.union(i, j)
    return [groups.find(i) for i in range(len(conversations))]


def assign_splits(
    conversations: Sequence[str], groups: Sequence[int], ratios: SplitRatios, seed: str
) -> list[str]:
    """The split of every item, decided per group from the hash of its first conversation."""
    group_key: dict[int, str] = {}
    for conversation, group in zip(conversations, groups, strict=True):
        if group not in group_key or conversation < group_key[group]:
            group_key[group] = conversation
    decided = {group: _split_of(key, ratios, seed) for group, key in group_key.items()}
    return [decided[group] for group in groups]


def _split_of(key: str, ratios: SplitRatios, seed: str) -> str:
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    if point < ratios.train:
        return "train"
    if point < ratios.train + ratios.validation:
        return "validation"
    return "test"
