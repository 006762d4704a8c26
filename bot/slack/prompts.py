"""Each workspace's suggested prompts for Slack's assistant view, and the defaults.

Slack shows up to four suggested prompts when someone opens a new chat with the app in its
assistant (split) view (``assistant.threads.setSuggestedPrompts``). Each prompt is a short
``title`` shown on the button and the ``message`` sent as the user's question when clicked.
An admin sets them per workspace (``supportbot workspace prompts``); a workspace with none gets
:func:`default_prompts` in the asker's language.

Rows are keyed by the workspace's id (never by a name a later workspace could reuse), every
call names its workspace, and :mod:`supportbot.workspace_purge` deletes them with it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Text, UniqueConstraint, delete
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from retrieval.workspaces import Workspace

MAX_PROMPTS = 4
"""Slack shows at most four suggested prompts in a thread."""
MAX_TITLE = 75
"""Slack documents only the count (4) for ``setSuggestedPrompts``; a prompt's title is shown
as a button, and 75 characters is Block Kit's limit for a button's text."""
MAX_MESSAGE = 2000
"""The message is sent as the user's question; kept well under a message's 4,000 characters."""


class PromptError(ValueError):
    """Suggested prompts that cannot be stored (the message says which and why, in one line)."""


class AssistantPrompt(SQLModel, table=True):
    """One suggested prompt of one workspace, at its place (0-3) in the list."""

    __tablename__ = "assistant_prompt"
    __table_args__ = (UniqueConstraint("workspace_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    position: int
    title: str
    message: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SuggestedPrompt:
    """``title``: the button's text; ``message``: the question sent when it is clicked."""

    title: str
    message: str

    def as_slack(self) -> dict[str, str]:
        """The shape ``assistant.threads.setSuggestedPrompts`` takes in its ``prompts`` list."""
        return {"title": self.title, "message": self.message}


DEFAULT_PROMPTS: dict[str, tuple[SuggestedPrompt, ...]] = {
    "en": (
        SuggestedPrompt("What can you help with?", "What kinds of questions can you answer?"),
        SuggestedPrompt("Getting started", "How do I get started?"),
        SuggestedPrompt("Reset my password", "How do I reset my password?"),
    ),
    "ko": (
        SuggestedPrompt("무엇을 도와줄 수 있나요?", "어떤 질문에 답할 수 있나요?"),
        SuggestedPrompt("시작하기", "어떻게 시작하나요?"),
        SuggestedPrompt("비밀번호 재설정", "비밀번호는 어떻게 재설정하나요?"),
    ),
}
PROMPTS_TITLE = {"en": "Try asking", "ko": "이렇게 물어보세요"}


def default_prompts(language: str) -> list[SuggestedPrompt]:
    """The prompts offered when a workspace has set none: ``language`` "ko" or else English."""
    return list(DEFAULT_PROMPTS["ko" if language == "ko" else "en"])


def parse_prompt(text: str) -> SuggestedPrompt:
    """``"title=message"`` (the CLI's form) as a prompt; the first ``=`` splits it.

    Raises :class:`PromptError` when there is no ``=``, either side is blank, or too long.
    """
    title, sep, message = text.partition("=")
    if not sep:
        raise PromptError(f"prompt {text!r} has no '=': write it as \"title=message\"")
    return checked(SuggestedPrompt(title.strip(), message.strip()))


def normalised(prompt: SuggestedPrompt) -> SuggestedPrompt:
    """The prompt as Slack shows it: Unicode NFC (Hangul typed or pasted on macOS arrives
    decomposed, two or three code points a syllable, and would count up to three times its
    length), the title on one line (a button has no line breaks), the message stripped."""
    title = " ".join(unicodedata.normalize("NFC", prompt.title).split())
    message = unicodedata.normalize("NFC", prompt.message).strip()
    return SuggestedPrompt(title, message)


def checked(prompt: SuggestedPrompt) -> SuggestedPrompt:
    """``prompt`` :func:`normalised` if Slack can show it, else :class:`PromptError` naming
    the problem in one line. Lengths are characters (code points) after normalising."""
    prompt = normalised(prompt)
    if not prompt.title or not prompt.message:
        raise PromptError(f"prompt {prompt.title!r}: the title and the message must not be blank")
    if len(prompt.title) > MAX_TITLE:
        raise PromptError(
            f"prompt title {prompt.title[:30]!r}… is {len(prompt.title)} characters; "
            f"at most {MAX_TITLE}"
        )
    if len(prompt.message) > MAX_MESSAGE:
        raise PromptError(
            f"prompt {prompt.title[:30]!r}: the message is {len(prompt.message)} characters; "
            f"at most {MAX_MESSAGE}"
        )
    return prompt


class PromptStore:
    """Reads and replaces a workspace's suggested prompts (blocking: call from a thread)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))

    def get(self, workspace: str) -> list[SuggestedPrompt]:
        """The workspace's prompts in order; empty when it has set none (or does not exist)."""
        with Session(self._engine) as session:
            rows = session.exec(
                select(AssistantPrompt)
                .join(Workspace, col(Workspace.id) == col(AssistantPrompt.workspace_id))
                .where(col(Workspace.name) == workspace)
                .order_by(col(AssistantPrompt.position))
            ).all()
            return [SuggestedPrompt(r.title, r.message) for r in rows]

    def set(self, workspace: str, prompts: Sequence[SuggestedPrompt]) -> list[SuggestedPrompt]:
        """Replace the workspace's prompts with ``prompts`` (1 to 4, checked); returns them.

        Raises :class:`PromptError` for an unknown workspace or prompts Slack cannot show;
        nothing is changed then.
        """
        if not prompts:
            raise PromptError("give at least one prompt, or use --clear to remove them")
        if len(prompts) > MAX_PROMPTS:
            raise PromptError(f"Slack shows at most {MAX_PROMPTS} prompts; {len(prompts)} given")
        prompts = [checked(p) for p in prompts]
        with Session(self._engine) as session:
            workspace_id = self._workspace_id(session, workspace)
            session.execute(
                delete(AssistantPrompt).where(col(AssistantPrompt.workspace_id) == workspace_id)
            )
            now = self._clock()
            for position, prompt in enumerate(prompts):
                session.add(
                    AssistantPrompt(
                        workspace_id=workspace_id,
                        position=position,
                        title=prompt.title,
                        message=prompt.message,
                        updated_at=now,
                    )
                )
            session.commit()
        return list(prompts)

    def clear(self, workspace: str) -> int:
        """Remove the workspace's prompts (it gets the defaults again); how many there were."""
        with Session(self._engine) as session:
            workspace_id = self._workspace_id(session, workspace)
            result = session.execute(
                delete(AssistantPrompt).where(col(AssistantPrompt.workspace_id) == workspace_id)
            )
            session.commit()
            return int(getattr(result, "rowcount", 0) or 0)

    @staticmethod
    def _workspace_id(session: Session, workspace: str) -> int:
        found = session.exec(select(Workspace.id).where(Workspace.name == workspace)).first()
        if found is None:
            raise PromptError(f"no workspace named {workspace!r}")
        return int(found)
