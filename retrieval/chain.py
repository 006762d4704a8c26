"""The answer chain: question and history in, an answer with numbered sources out.

history → standalone question (only when there is history and a chat model) → hybrid search in
the workspace's tenant → relevance gate → prompt with numbered context → chat model → citations
mapped back to sources. Without a chat model it answers extractively: the best passages, quoted
and labelled as such. When nothing relevant is found it says so and offers a human, in the
asker's language, rather than letting a model invent an answer.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser

from retrieval.errors import LLMError
from retrieval.prompts import (
    ANSWER_PROMPT,
    CONDENSE_PROMPT,
    EXTRACTIVE_LABEL,
    NOT_FOUND,
    is_korean,
    render_context,
)
from retrieval.store import SearchResult

Mode = Literal["llm", "extractive"]
Searcher = Callable[[str], list[SearchResult]]


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message of the conversation."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class Source:
    """A cited source: ``n`` is the number used in the answer text."""

    n: int
    doc_id: str
    source: str
    title: str
    url: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    sources: list[Source]
    mode: Mode
    standalone_question: str
    retrieved: list[SearchResult] = field(default_factory=list)
    found: bool = True
    model: str = ""
    latency_ms: int = 0
    # The messages sent to the chat model, as OpenAI-style role/content dicts (none when
    # no model was asked): kept with the answer as the prompt of fine-tuning data.
    prompt_messages: list[dict[str, str]] = field(default_factory=list)


_CITATION = re.compile(r"\[(\d{1,2})\]")


class AnswerChain:
    """Answers questions from one workspace's knowledge through ``search``.

    ``search`` is bound to the workspace by the caller, so the chain itself cannot reach any
    other tenant.
    """

    def __init__(
        self,
        search: Searcher,
        *,
        chat_model: BaseChatModel | None,
        min_relevance: float,
        model_name: str = "",
        max_history_turns: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._search = search
        self._chat = chat_model
        self._min_relevance = min_relevance
        self._model_name = model_name
        self._max_history = max_history_turns
        self._clock = clock

    @property
    def mode(self) -> Mode:
        return "llm" if self._chat is not None else "extractive"

    def answer(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """The whole answer at once."""
        final: Answer | None = None
        for item in self.stream(question, history):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final

    async def aanswer(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """:meth:`answer` for event loops: the model's wait holds no thread.

        Search (embedding and Weaviate: short, CPU-bound or blocking) runs in a worker thread;
        the chat model is awaited, so a bot with many conversations in flight is not limited
        by the size of a thread pool while each waits seconds for its model.
        """
        started = self._clock()
        messages = _to_messages(history[-self._max_history :])
        standalone = question
        if messages and self._chat is not None:
            try:
                rewritten = await (CONDENSE_PROMPT | self._chat | StrOutputParser()).ainvoke(
                    {"history": messages, "question": question}
                )
            except Exception as e:
                raise _llm_error(e) from e
            standalone = rewritten.strip() or question
        retrieved = await asyncio.to_thread(self._search, standalone)
        plan = self._plan(question, standalone, retrieved, started)
        if isinstance(plan, Answer):
            return plan
        assert self._chat is not None
        prompt = ANSWER_PROMPT.format_messages(**self._answer_inputs(question, messages, plan))
        try:
            text = await (self._chat | StrOutputParser()).ainvoke(prompt)
        except Exception as e:
            raise _llm_error(e) from e
        return self._llm_answer(text, plan, standalone, retrieved, started, prompt)

    def stream(self, question: str, history: Sequence[Turn] = ()) -> Iterator[str | Answer]:
        """Yield the answer text in pieces as the model writes it, then the :class:`Answer`."""
        started = self._clock()
        messages = _to_messages(history[-self._max_history :])
        standalone = self._standalone(question, messages)
        retrieved = self._search(standalone)
        plan = self._plan(question, standalone, retrieved, started)
        if isinstance(plan, Answer):
            yield plan.text
            yield plan
            return
        assert self._chat is not None
        pieces: list[str] = []
        prompt = ANSWER_PROMPT.format_messages(**self._answer_inputs(question, messages, plan))
        try:
            for piece in (self._chat | StrOutputParser()).stream(prompt):
                pieces.append(piece)
                yield piece
        except Exception as e:
            raise _llm_error(e) from e
        yield self._llm_answer("".join(pieces), plan, standalone, retrieved, started, prompt)

    def _plan(
        self, question: str, standalone: str, retrieved: list[SearchResult], started: float
    ) -> Answer | list[SearchResult]:
        """The finished answer when no model is needed, else the relevant context for it."""
        relevant = [r for r in retrieved if r.similarity >= self._min_relevance]
        language = "ko" if is_korean(question) else "en"
        elapsed = self._elapsed_ms(started)
        if not relevant:
            return Answer(
                NOT_FOUND[language], [], self.mode, standalone, retrieved, False,
                self._model_name, elapsed,
            )  # fmt: skip
        if self._chat is None:
            text, sources = _extractive(relevant, language)
            return Answer(text, sources, "extractive", standalone, retrieved, True, "", elapsed)
        return relevant

    @staticmethod
    def _answer_inputs(
        question: str, messages: list[BaseMessage], relevant: list[SearchResult]
    ) -> dict[str, object]:
        return {"history": messages, "question": question, "context": render_context(relevant)}

    def _llm_answer(
        self, text: str, relevant: list[SearchResult], standalone: str,
        retrieved: list[SearchResult], started: float, prompt: Sequence[BaseMessage],
    ) -> Answer:  # fmt: skip
        text = text.strip()
        return Answer(
            text, _cited_sources(text, relevant), "llm", standalone, retrieved, True,
            self._model_name, self._elapsed_ms(started), _role_content(prompt),
        )  # fmt: skip

    def _standalone(self, question: str, history: list[BaseMessage]) -> str:
        if not history or self._chat is None:
            return question
        try:
            rewritten = (CONDENSE_PROMPT | self._chat | StrOutputParser()).invoke(
                {"history": history, "question": question}
            )
        except Exception as e:
            raise _llm_error(e) from e
        return rewritten.strip() or question

    def _elapsed_ms(self, started: float) -> int:
        return int((self._clock() - started) * 1000)


def _to_messages(history: Sequence[Turn]) -> list[BaseMessage]:
    return [
        HumanMessage(turn.text) if turn.role == "user" else AIMessage(turn.text) for turn in history
    ]


_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def _role_content(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": _ROLES.get(m.type, m.type), "content": m.text} for m in messages]


def _source(n: int, result: SearchResult) -> Source:
    return Source(n, result.doc_id, result.source, result.title, result.url)


def _cited_sources(text: str, context: Sequence[SearchResult]) -> list[Source]:
    """Sources for the [n] the answer cites; all context when it cites none it was given."""
    cited = sorted({int(m) for m in _CITATION.findall(text) if 1 <= int(m) <= len(context)})
    numbers = cited or list(range(1, len(context) + 1))
    return [_source(n, context[n - 1]) for n in numbers]


def group_by_document(sources: Sequence[Source]) -> list[tuple[list[int], Source]]:
    """Citation numbers per cited document, in order, for showing each document once."""
    groups: dict[tuple[str, str], tuple[list[int], Source]] = {}
    for source in sources:
        numbers, _ = groups.setdefault((source.doc_id, source.source), ([], source))
        numbers.append(source.n)
    return list(groups.values())


def _extractive(results: Sequence[SearchResult], language: str) -> tuple[str, list[Source]]:
    # Two passages: enough to carry the answer, short enough to read in a chat.
    best = list(results[:2])
    quotes = []
    for n, result in enumerate(best, start=1):
        quoted = "\n".join(f"> {line}" if line else ">" for line in result.text.splitlines())
        quotes.append(f"{quoted}\n[{n}]")
    text = EXTRACTIVE_LABEL[language] + "\n\n" + "\n\n".join(quotes)
    return text, [_source(n, r) for n, r in enumerate(best, start=1)]


def _llm_error(error: Exception) -> LLMError:
    name = type(error).__name__
    if "Timeout" in name:
        return LLMError(
            "the language model did not answer in time; try again, or raise LLM_TIMEOUT_S"
        )
    first = str(error).splitlines()[0][:200] if str(error) else name
    return LLMError(
        f"the language model request failed ({name}: {first}); check LLM_BASE_URL, "
        "LLM_MODEL and LLM_API_KEY"
    )
