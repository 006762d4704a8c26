"""Tests for the local OpenAI-compatible server, driven by the REAL ``openai`` client.

Why: every other test that needs an LLM relies on this simulator, so it must be proven to
speak the wire protocol the way the official client (and LangChain on top of it) expects,
including errors, retries and timeouts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.servers.openai_chat import OpenAIChatSimulator, default_responder

REPO_ROOT = Path(__file__).resolve().parent.parent

CONTEXT_PROMPT = (
    "Answer from the context below and cite it.\n\n"
    "[1] Password resets are done from Settings > Security. Admins can force a reset.\n"
    "[2] Billing is monthly.\n\n"
    "Question: how do I reset my password?"
)
EXPECTED = "Based on the documentation: Password resets are done from Settings > Security. [1]"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are a support bot."},
    {"role": "user", "content": CONTEXT_PROMPT},
]


@pytest.fixture
def sim() -> Iterator[OpenAIChatSimulator]:
    with OpenAIChatSimulator() as simulator:
        yield simulator


def make_client(sim: OpenAIChatSimulator, **kwargs: Any) -> openai.OpenAI:
    options: dict[str, Any] = {"base_url": sim.base_url, "api_key": "test-key", "max_retries": 0}
    options.update(kwargs)
    return openai.OpenAI(**options)


# --------------------------------------------------------------------------- default responder


def test_default_responder_uses_first_sentence_of_block_one() -> None:
    assert default_responder(MESSAGES) == EXPECTED


def test_default_responder_without_context() -> None:
    assert default_responder([{"role": "user", "content": "hello"}]) == "No context provided."


def test_default_responder_multiline_block_and_parts() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "[2] Second doc. More."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "  [1] Title line\ncontinues here! rest"}],
        },
    ]
    assert default_responder(messages) == (
        "Based on the documentation: Title line continues here! [1]"
    )


def test_default_responder_lowest_block_when_no_block_one() -> None:
    messages = [{"role": "user", "content": "[3] Third.\n[2] Second one. x"}]
    assert default_responder(messages) == "Based on the documentation: Second one. [2]"


# --------------------------------------------------------------------------- lifecycle


def test_nothing_starts_in_init_and_base_url_shape() -> None:
    simulator = OpenAIChatSimulator()
    assert not simulator.running
    with pytest.raises(RuntimeError):
        _ = simulator.base_url
    with simulator:
        assert simulator.base_url == f"http://127.0.0.1:{simulator.port}/v1"
        assert simulator.port > 0
    assert not simulator.running
    simulator.stop()  # idempotent


# --------------------------------------------------------------------------- chat completions


def test_non_streaming_reply_and_usage(sim: OpenAIChatSimulator) -> None:
    completion = make_client(sim).chat.completions.create(model="gpt-test", messages=MESSAGES)

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-test"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == EXPECTED
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    prompt_words = sum(len(str(m.get("content")).split()) for m in MESSAGES)
    assert completion.usage.prompt_tokens == prompt_words
    assert completion.usage.completion_tokens == len(EXPECTED.split())
    assert completion.usage.total_tokens == prompt_words + len(EXPECTED.split())


def test_streaming_matches_non_streaming(sim: OpenAIChatSimulator) -> None:
    client = make_client(sim)
    plain = client.chat.completions.create(model="m", messages=MESSAGES)
    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) > 3
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [f.choices[0].finish_reason for f in finals] == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert plain.usage is not None
    assert chunks[-1].usage.total_tokens == plain.usage.total_tokens


def test_stream_wire_format(sim: OpenAIChatSimulator) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    headers = {"Authorization": "Bearer k"}
    with httpx.stream("POST", f"{sim.base_url}/chat/completions", json=body, headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        assert r.headers["transfer-encoding"] == "chunked"
        lines = [line for line in r.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: ") :]) for line in lines[:-1]]
    assert "usage" not in chunks[-1]  # no usage chunk unless asked for
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_custom_responder_and_models(sim: OpenAIChatSimulator) -> None:
    sim.responder = lambda messages: f"{len(messages)} messages"
    client = make_client(sim)
    reply = client.chat.completions.create(model="m", messages=MESSAGES)
    assert reply.choices[0].message.content == "2 messages"
    assert [m.id for m in client.models.list()] == [sim.model]


def test_records_requests(sim: OpenAIChatSimulator) -> None:
    make_client(sim).chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        temperature=0.1,
    )

    [record] = sim.requests
    assert record.method == "POST"
    assert record.path == "/v1/chat/completions"
    assert record.headers["authorization"] == "Bearer test-key"
    assert sim.chat_requests() == [{"model": "gpt-test", "messages": MESSAGES, "temperature": 0.1}]
    sim.clear_requests()
    assert sim.requests == []


def test_concurrent_requests_are_all_recorded(sim: OpenAIChatSimulator) -> None:
    client = make_client(sim)

    def ask(i: int) -> str | None:
        messages: list[ChatCompletionMessageParam] = [
            {"role": "user", "content": f"[1] Answer {i}."}
        ]
        reply = client.chat.completions.create(model="m", messages=messages)
        return reply.choices[0].message.content

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(16)))
    assert answers == [f"Based on the documentation: Answer {i}. [1]" for i in range(16)]
    assert len(sim.chat_requests()) == 16


# --------------------------------------------------------------------------- errors and faults


def test_rate_limit_surfaces_as_rate_limit_error(sim: OpenAIChatSimulator) -> None:
    sim.fail_next(1, status=429, retry_after=0.05)
    with pytest.raises(openai.RateLimitError) as info:
        make_client(sim).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "0.05"
    assert info.value.code == "rate_limit_exceeded"
    assert len(sim.requests) == 1


def test_rate_limit_is_retried_then_succeeds(sim: OpenAIChatSimulator) -> None:
    sim.fail_next(1, status=429, retry_after=0.05)
    client = make_client(sim, max_retries=1)
    reply = client.chat.completions.create(model="m", messages=MESSAGES)
    assert reply.choices[0].message.content == EXPECTED
    assert len(sim.requests) == 2
    assert sim.chat_requests()[0] == sim.chat_requests()[1]


def test_server_error_and_custom_body(sim: OpenAIChatSimulator) -> None:
    sim.fail_next(1)
    overloaded = {"error": {"message": "overloaded", "type": "x", "code": "y"}}
    sim.fail_next(1, status=503, body=overloaded)
    client = make_client(sim)
    with pytest.raises(openai.InternalServerError) as first:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert first.value.status_code == 500
    assert first.value.type == "server_error"
    with pytest.raises(openai.InternalServerError) as second:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert second.value.status_code == 503
    assert second.value.message.endswith("overloaded")
    # The queue is drained: the next call succeeds.
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices


def test_hang_times_out_client_and_stop_stays_fast() -> None:
    simulator = OpenAIChatSimulator().start()
    try:
        simulator.hang_next(1)
        client = make_client(simulator, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="m", messages=MESSAGES)
        assert time.monotonic() - started < 2
        simulator.hang_next(1)  # leave a handler hung while stopping
        with ThreadPoolExecutor(1) as pool:
            slow_client = make_client(simulator, timeout=5)
            pending = pool.submit(
                lambda: slow_client.chat.completions.create(model="m", messages=MESSAGES)
            )
            time.sleep(0.1)
            started = time.monotonic()
            simulator.stop()
            assert time.monotonic() - started < 1
            with pytest.raises(openai.APIConnectionError):
                pending.result(timeout=5)
    finally:
        simulator.stop()


def test_latency_is_applied(sim: OpenAIChatSimulator) -> None:
    sim.latency = 0.3
    started = time.monotonic()
    make_client(sim).chat.completions.create(model="m", messages=MESSAGES)
    assert 0.3 <= time.monotonic() - started < 2
    sim.reset_faults()
    assert sim.latency == 0.0


def test_missing_key_is_401(sim: OpenAIChatSimulator) -> None:
    body = {"model": "m", "messages": MESSAGES}
    response = httpx.post(f"{sim.base_url}/chat/completions", json=body)
    assert response.status_code == 401
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert error["type"] == "invalid_request_error"
    assert sim.requests[0].headers.get("authorization") is None


def test_wrong_key_is_authentication_error() -> None:
    with OpenAIChatSimulator(api_key="right") as simulator:
        with pytest.raises(openai.AuthenticationError):
            make_client(simulator).chat.completions.create(model="m", messages=MESSAGES)
        reply = make_client(simulator, api_key="right").chat.completions.create(
            model="m",
            messages=MESSAGES,
        )
        assert reply.choices[0].message.content == EXPECTED


def test_unknown_route_is_404_in_openai_shape(sim: OpenAIChatSimulator) -> None:
    auth = {"Authorization": "Bearer k"}
    response = httpx.post(f"{sim.base_url}/embeddings", json={}, headers=auth)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"
    with pytest.raises(openai.NotFoundError):
        make_client(sim).embeddings.create(model="m", input="x")


def test_bad_request_is_400(sim: OpenAIChatSimulator) -> None:
    response = httpx.post(
        f"{sim.base_url}/chat/completions",
        content=b"{not json",
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


# --------------------------------------------------------------------------- integrations


def test_langchain_chat_openai_invoke_and_stream(sim: OpenAIChatSimulator) -> None:
    from langchain_openai import ChatOpenAI

    # pydantic coerces the plain str key to SecretStr at runtime; the stub only lists SecretStr.
    llm = ChatOpenAI(base_url=sim.base_url, api_key="k", model="m", max_retries=0)  # type: ignore[arg-type]
    message = llm.invoke(CONTEXT_PROMPT)
    assert message.content == EXPECTED
    streamed = "".join(str(chunk.content) for chunk in llm.stream(CONTEXT_PROMPT))
    assert streamed == EXPECTED
    bodies = sim.chat_requests()
    assert [b.get("stream", False) for b in bodies] == [False, True]
    assert all(b["model"] == "m" for b in bodies)


def test_command_line_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.openai_chat", "--port", "0", "--latency", "0.01"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
        reply = client.chat.completions.create(model="m", messages=MESSAGES)
        assert reply.choices[0].message.content == EXPECTED
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=5)
    assert process.returncode == 0, stderr
    assert "Warning" not in stderr
