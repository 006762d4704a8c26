"""The answer chain: question and history in, an answer with numbered sources out.

history → standalone question (only when there is history and a chat model) → hybrid search in
the workspace's tenant → relevance gate → near-identical passages merged (one excerpt citing
every document it came from) → prompt with the excerpts as a delimited JSON data block
(:mod:`retrieval.prompts`) → chat model → citations mapped back to sources. Without a chat
model it answers extractively: the best passages, quoted once each and labelled as such. When
nothing relevant is found it says so, in the asker's language, rather than letting a model
invent an answer; it says a person can help only when one can be called in (``handoff``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser

from retrieval.duplicates import merge_duplicates
from retrieval.errors import LLMError
from retrieval.prompts import (
    EXTRACTIVE_LABEL,
    Excerpt,
    answer_messages,
    condense_messages,
    is_korean,
    not_found_text,
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
    """A cited source: ``n`` is the number used in the answer text.

    A passage found in several documents is one excerpt with one number: each of its documents
    is a :class:`Source` with that same ``n``.
    """

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

    def answer(
        self, question: str, history: Sequence[Turn] = (), *, handoff: bool = False
    ) -> Answer:
        """The whole answer at once. ``handoff``: a person can be called in where the question
        was asked (an escalation target exists there); only then does an answer that found
        nothing say a person can help (:data:`retrieval.prompts.NOT_FOUND`)."""
        final: Answer | None = None
        for item in self.stream(question, history, handoff=handoff):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final

    async def aanswer(
        self, question: str, history: Sequence[Turn] = (), *, handoff: bool = False
    ) -> Answer:
        """:meth:`answer` for event loops: the model's wait holds no thread.

        Search (embedding and Weaviate: short, CPU-bound or blocking) runs in a worker thread;
        the chat model is awaited, so a bot with many conversations in flight is not limited
        by the size of a thread pool while each waits seconds for its model.
        """
        started = self._clock()
        turns = history[-self._max_history :]
        standalone, retrieved, plan = await self._aplan(question, turns, started, handoff)
        if isinstance(plan, Answer):
            return plan
        assert self._chat is not None
        prompt = answer_messages(question, plan, _pairs(turns), handoff=handoff)
        try:
            text = await (self._chat | StrOutputParser()).ainvoke(prompt)
        except Exception as e:
            raise _llm_error(e) from e
        return self._llm_answer(text, plan, standalone, retrieved, started, prompt)

    async def astream(
        self, question: str, history: Sequence[Turn] = (), *, handoff: bool = False
    ) -> AsyncIterator[str | Answer]:
        """:meth:`stream` for event loops: text deltas as the model writes them, then the
        :class:`Answer` (whose ``text`` is the deltas joined, stripped).

        With no chat model (extractive mode), or when nothing relevant is found, the whole
        text comes as one piece: there is nothing to stream. Errors are :class:`LLMError`,
        raised where they happen (possibly after some deltas were yielded).
        """
        started = self._clock()
        turns = history[-self._max_history :]
        standalone, retrieved, plan = await self._aplan(question, turns, started, handoff)
        if isinstance(plan, Answer):
            yield plan.text
            yield plan
            return
        assert self._chat is not None
        pieces: list[str] = []
        prompt = answer_messages(question, plan, _pairs(turns), handoff=handoff)
        try:
            async for piece in (self._chat | StrOutputParser()).astream(prompt):
                if piece:
                    pieces.append(piece)
                    yield piece
        except Exception as e:
            raise _llm_error(e) from e
        yield self._llm_answer("".join(pieces), plan, standalone, retrieved, started, prompt)

    async def _aplan(
        self, question: str, turns: Sequence[Turn], started: float, handoff: bool
    ) -> tuple[str, list[SearchResult], Answer | list[Excerpt]]:
        """Standalone question (awaited), search (in a worker thread), then :meth:`_plan`."""
        standalone = question
        if turns and self._chat is not None:
            try:
                rewritten = await (self._chat | StrOutputParser()).ainvoke(
                    _condense_prompt(question, turns)
                )
            except Exception as e:
                raise _llm_error(e) from e
            standalone = rewritten.strip() or question
        retrieved = await asyncio.to_thread(self._search, standalone)
        return standalone, retrieved, self._plan(question, standalone, retrieved, started, handoff)

    def stream(
        self, question: str, history: Sequence[Turn] = (), *, handoff: bool = False
    ) -> Iterator[str | Answer]:
        """Yield the answer text in pieces as the model writes it, then the :class:`Answer`."""
        started = self._clock()
        turns = history[-self._max_history :]
        standalone = self._standalone(question, turns)
        retrieved = self._search(standalone)
        plan = self._plan(question, standalone, retrieved, started, handoff)
        if isinstance(plan, Answer):
            yield plan.text
            yield plan
            return
        assert self._chat is not None
        pieces: list[str] = []
        prompt = answer_messages(question, plan, _pairs(turns), handoff=handoff)
        try:
            for piece in (self._chat | StrOutputParser()).stream(prompt):
                pieces.append(piece)
                yield piece
        except Exception as e:
            raise _llm_error(e) from e
        yield self._llm_answer("".join(pieces), plan, standalone, retrieved, started, prompt)

    def _plan(
        self,
        question: str,
        standalone: str,
        retrieved: list[SearchResult],
        started: float,
        handoff: bool = False,
    ) -> Answer | list[Excerpt]:
        """The finished answer when no model is needed, else the excerpts to give it.

        Near-identical passages of several documents become one excerpt citing each of them.
        """
        relevant = merge_duplicates([r for r in retrieved if r.similarity >= self._min_relevance])
        language = "ko" if is_korean(question) else "en"
        elapsed = self._elapsed_ms(started)
        if not relevant:
            return Answer(
                not_found_text(language, handoff=handoff), [], self.mode, standalone, retrieved,
                False,
                self._model_name, elapsed,
            )  # fmt: skip
        if self._chat is None:
            text, sources = _extractive(relevant, language)
            return Answer(text, sources, "extractive", standalone, retrieved, True, "", elapsed)
        return relevant

    def _llm_answer(
        self, text: str, relevant: list[Excerpt], standalone: str,
        retrieved: list[SearchResult], started: float, prompt: Sequence[BaseMessage],
    ) -> Answer:  # fmt: skip
        text = text.strip()
        return Answer(
            text, _cited_sources(text, relevant), "llm", standalone, retrieved, True,
            self._model_name, self._elapsed_ms(started), _role_content(prompt),
        )  # fmt: skip

    def _standalone(self, question: str, history: Sequence[Turn]) -> str:
        if not history or self._chat is None:
            return question
        try:
            rewritten = (self._chat | StrOutputParser()).invoke(_condense_prompt(question, history))
        except Exception as e:
            raise _llm_error(e) from e
        return rewritten.strip() or question

    def _elapsed_ms(self, started: float) -> int:
        return int((self._clock() - started) * 1000)


def _pairs(history: Sequence[Turn]) -> list[tuple[str, str]]:
    return [(turn.role, turn.text) for turn in history]


def _condense_prompt(question: str, history: Sequence[Turn]) -> list[BaseMessage]:
    return condense_messages(question, _pairs(history))


_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def _role_content(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": _ROLES.get(m.type, m.type), "content": m.text} for m in messages]


def _sources(excerpt: Excerpt) -> list[Source]:
    """One source per document the excerpt came from, all with the excerpt's number."""
    documents: dict[tuple[str, str], SearchResult] = {}
    for result in excerpt.results:
        documents.setdefault((result.doc_id, result.source), result)
    return [Source(excerpt.n, r.doc_id, r.source, r.title, r.url) for r in documents.values()]


def _cited_sources(text: str, context: Sequence[Excerpt]) -> list[Source]:
    """Sources for the [n] the answer cites; all context when it cites none it was given."""
    cited = sorted({int(m) for m in _CITATION.findall(text) if 1 <= int(m) <= len(context)})
    numbers = cited or list(range(1, len(context) + 1))
    return [source for n in numbers for source in _sources(context[n - 1])]


def group_by_document(sources: Sequence[Source]) -> list[tuple[list[int], Source]]:
    """Citation numbers per cited document, in order, for showing each document once."""
    groups: dict[tuple[str, str], tuple[list[int], Source]] = {}
    for source in sources:
        numbers, _ = groups.setdefault((source.doc_id, source.source), ([], source))
        numbers.append(source.n)
    return list(groups.values())


def _extractive(excerpts: Sequence[Excerpt], language: str) -> tuple[str, list[Source]]:
    # Two passages: enough to carry the answer, short enough to read in a chat. A passage
    # found in several documents is one excerpt: quoted once, citing each document.
    best = list(excerpts[:2])
    quotes = []
    for excerpt in best:
        lines = excerpt.text.splitlines()
        quoted = "\n".join(f"> {line}" if line else ">" for line in lines)
        quotes.append(f"{quoted}\n[{excerpt.n}]")
    text = EXTRACTIVE_LABEL[language] + "\n\n" + "\n\n".join(quotes)
    return text, [source for excerpt in best for source in _sources(excerpt)]


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
