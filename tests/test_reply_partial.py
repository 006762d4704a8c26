"""Partial answers while streaming (pure logic, no servers): what may be appended to an
append-only stream as the model writes, and the background sender that keeps the model's
loop from ever waiting for the platform.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from bot.reply.partial import AppendOnly, Flusher, stable_text, stream_markdown

_PIECE = re.compile(r"\s*\S+\s*|\s+")  # word-sized pieces, as the chat simulator streams


def _fed(answer: str) -> tuple[AppendOnly, list[tuple[int, str]]]:
    """Feed ``answer`` piece by piece; the (text length, delta) of every append."""
    appends = AppendOnly(max_chars=12_000)
    text, deltas = "", []
    for piece in _PIECE.findall(answer):
        text += piece
        delta = appends.next_delta(text)
        if delta:
            deltas.append((len(text), delta))
    return appends, deltas


# Answers of several kinds: each must stream from its first word, never show markup half
# written, and never stall (what was appended stays a prefix of the final rendering).
ANSWERS = {
    "prose with citations": "Passwords can be reset from Settings [1]. The link is valid for "
    "24 hours [2].\n\nIf it expired, ask again (see [1]).",
    "inline code and bold": "Run `supportbot sync --all` once, then **restart** the bot.\n\n"
    "The log_file setting says where the log goes.",
    "links and URLs": "See [the guide](https://example.com/guide) or https://example.com/faq "
    "for more.\n\nThat is all.",
    "Korean": "비밀번호는 설정 > 보안에서 재설정할 수 있습니다 [1]. "
    "링크는 24시간 동안 유효합니다.\n\n자세한 내용은 도움말을 보세요.",
    "lists and code": "Do this:\n\n- open Settings\n- choose Security\n\n```sh\nsupportbot "
    "sync\n```\n\nDone! R&D notes are <b>not</b> needed.",
}


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
def test_an_append_only_stream_starts_at_the_first_word_and_never_stalls(answer: str) -> None:
    appends, deltas = _fed(answer)
    assert not appends.stalled
    assert deltas, "nothing was streamed"
    first_word = _PIECE.findall(answer)[0]
    assert deltas[0][0] <= len(first_word) + len(_PIECE.findall(answer)[1])
    assert (stream_markdown(answer) + "\n\n").startswith(appends.sent)
    assert appends.sent == "".join(d for _, d in deltas)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Run `supportbot sy", "Run"),  # an open code span
        ("Then **restart", "Then"),  # open emphasis
        ("See [the gui", "See"),  # a link being written
        ("See [1]", "See"),  # a citation, until the next character says it is no link
        ("See [1] now ", "See [1] now"),
        ("Ask @he", "Ask"),  # half a word could become @here
        ("- item one ", ""),  # a list: not a plain paragraph
        ("Title line\n", "Title line"),
        ("```sh\nsupportbot sync ", ""),  # inside code
    ],
)
def test_only_settled_text_is_stable(text: str, shown: str) -> None:
    assert stable_text(text) == shown


def test_a_mention_split_across_pieces_is_never_appended_raw() -> None:
    appends = AppendOnly(max_chars=12_000)
    sent = [appends.next_delta(t) for t in ("Ask ", "Ask @he", "Ask @here ", "Ask @here now ")]
    assert "@here" not in "".join(sent)
    assert "@\u2060here" in appends.sent


async def test_the_flusher_never_waits_for_a_call_and_sends_the_latest_text_in_order() -> None:
    shown: list[str] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_send(text: str) -> bool:
        started.set()
        await release.wait()
        shown.append(text)
        return True

    flusher = Flusher(slow_send, interval_s=0.05)
    flusher.offer("a")
    await started.wait()  # "a" is in flight and its call hangs
    for text in ("a b", "a b c", "a b c d"):
        flusher.offer(text)  # returns at once: the model is not held up
    release.set()
    await asyncio.sleep(0.2)
    assert shown == ["a", "a b c d"]  # the latest text, after the first; nothing reordered
    assert await flusher.close() is None


async def test_text_held_back_by_the_pace_goes_out_without_another_token() -> None:
    shown: list[tuple[float, str]] = []
    loop = asyncio.get_running_loop()

    async def send(text: str) -> bool:
        shown.append((loop.time(), text))
        return True

    flusher = Flusher(send, interval_s=0.2)
    flusher.offer("first")
    await asyncio.sleep(0.01)
    flusher.offer("first words")  # throttled out; no token follows it
    await asyncio.sleep(0.4)
    assert [text for _, text in shown] == ["first", "first words"]
    assert shown[1][0] - shown[0][0] >= 0.19
    await flusher.close()


async def test_close_waits_for_the_call_in_flight_and_drops_unsent_text() -> None:
    shown: list[str] = []

    async def send(text: str) -> bool:
        await asyncio.sleep(0.1)
        shown.append(text)
        return True

    flusher = Flusher(send, interval_s=1.0)
    flusher.offer("one")
    await asyncio.sleep(0.01)
    flusher.offer("one two")  # waits for the pace; the final rendering replaces it
    await flusher.close()
    assert shown == ["one"]  # the call in flight completed; nothing after the close
    flusher.offer("three")
    await asyncio.sleep(0.05)
    assert shown == ["one"]


async def test_a_failed_call_is_raised_to_the_next_offer_and_returned_by_close() -> None:
    async def broken(text: str) -> bool:
        raise RuntimeError("stream gone")

    flusher = Flusher(broken, interval_s=0.01)
    flusher.offer("one")
    await asyncio.sleep(0.05)
    with pytest.raises(RuntimeError, match="stream gone"):
        flusher.offer("one two")
    error = await flusher.close()
    assert isinstance(error, RuntimeError)
