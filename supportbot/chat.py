"""The terminal chat: ask, see the answer stream in with its sources, rate it 👍/👎.

Each answer and its rating go through the same feedback store the Slack and Discord bots use,
so a demo already produces preference data.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable

from rich.console import Console

from feedback.store import answer_record
from retrieval.chain import Answer, AnswerChain, Turn, group_by_document
from retrieval.errors import RetrievalError
from supportbot.app import App

_RATINGS = {"+": 1, "y": 1, "👍": 1, "-": -1, "n": -1, "👎": -1}
_QUIT = {"/quit", "/exit", ":q"}


def run_chat(
    application: App,
    workspace: str,
    *,
    console: Console,
    read: Callable[[str], str] = input,
) -> None:
    """Run the chat until /quit or end of input.

    Raises :class:`~retrieval.errors.UnknownWorkspaceError` when there is no such workspace.
    """
    info = application.registry.get(workspace)  # its tenant: answers are stored only into it
    workspace = info.name
    chain = application.answer_chain(workspace)
    feedback = application.feedback
    user = getpass.getuser()
    history: list[Turn] = []
    mode = "language model" if chain.mode == "llm" else "extractive answers (no LLM configured)"
    console.print(
        f"[bold]supportbot[/] — workspace [bold]{workspace}[/], {mode}. "
        "Ask in Korean or English; /quit to leave."
    )
    while True:
        try:
            question = read("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not question:
            continue
        if question in _QUIT:
            return
        answer = _stream_answer(chain, question, history, console)
        if answer is None:
            continue
        history += [Turn("user", question), Turn("assistant", answer.text)]
        interaction_id = feedback.record_answer(
            answer_record(
                answer,
                workspace=workspace,
                tenant=info.tenant,
                platform="terminal",
                question=question,
                user_id=user,
            )
        )
        if interaction_id is None:  # the workspace was deleted meanwhile: nothing to rate
            console.print(
                f"workspace {workspace} was deleted; this answer was not kept",
                style="red",
                markup=False,
            )
            return
        try:
            rating = read("rate this answer: [+] 👍  [-] 👎  [Enter] skip > ").strip().lower()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if rating in _RATINGS:
            feedback.rate(interaction_id, user_id=user, value=_RATINGS[rating], source="terminal")
            console.print("thanks, noted " + ("👍" if _RATINGS[rating] > 0 else "👎"))


def _stream_answer(
    chain: AnswerChain, question: str, history: list[Turn], console: Console
) -> Answer | None:
    console.print("[bold cyan]bot>[/] ", end="")
    final: Answer | None = None
    try:
        for item in chain.stream(question, history):
            if isinstance(item, Answer):
                final = item
            else:
                console.print(item, end="", markup=False, highlight=False)
    except RetrievalError as e:
        console.print(f"\n[red]sorry, I could not answer: {e}[/]")
        return None
    console.print()
    assert final is not None
    if final.sources:
        console.print("[dim]sources:[/]")
        for numbers, source in group_by_document(final.sources):
            cited = "".join(f"[{n}]" for n in numbers)
            console.print(
                f"  {cited} {source.title} — {source.url or source.source}",
                markup=False,
                highlight=False,
            )
    return final
