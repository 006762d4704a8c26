"""Reading one workspace's implicit feedback back: signals and teammates' reference answers.

The input of ``feedback export --labels implicit|all``. Kept apart from ratings, always: an
answer's implicit label is the sum of its signals' weights (see :mod:`bot.signals` for the
kinds and weights), > 0 liked, < 0 disliked, 0 no label; a rating never enters that sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from feedback.models import ReferenceAnswer, Signal


@dataclass(slots=True)
class ImplicitFeedback:
    """One answer's signals (kind, weight, in the order received) and the teammates' replies
    that answer it (``references``; replies that only agree are counted in ``agreements``)."""

    kinds: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    agreements: int = 0

    @property
    def net(self) -> float:
        return sum(self.weights)

    @property
    def label(self) -> str | None:
        """ "liked", "disliked", or None when the signals cancel out or there are none."""
        if self.net > 0:
            return "liked"
        if self.net < 0:
            return "disliked"
        return None

    @property
    def reference(self) -> str | None:
        """The teammate's answer to learn from: the longest reply that is not only agreement
        (a first "let me check" or a closing "hope that helps" are shorter than the answer)."""
        return max(self.references, key=len) if self.references else None


def load_implicit(engine: Engine, workspace: str) -> dict[int, ImplicitFeedback]:
    """Implicit feedback of ``workspace``'s answers, by answer id (only answers that have some)."""
    found: dict[int, ImplicitFeedback] = {}
    with Session(engine) as session:
        for signal in session.exec(
            select(Signal).where(Signal.workspace == workspace).order_by(col(Signal.id))
        ):
            item = found.setdefault(signal.interaction_id, ImplicitFeedback())
            item.kinds.append(signal.kind)
            item.weights.append(signal.weight)
        for reply in session.exec(
            select(ReferenceAnswer)
            .where(ReferenceAnswer.workspace == workspace)
            .order_by(col(ReferenceAnswer.id))
        ):
            item = found.setdefault(reply.interaction_id, ImplicitFeedback())
            if reply.agrees:
                item.agreements += 1
            else:
                item.references.append(reply.text)
    return found
