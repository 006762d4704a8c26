"""Serve an ASGI application with uvicorn on a free local port, in the test's own event loop.

``async with serving(app) as base_url:`` (``http://127.0.0.1:PORT``) -- what ``supportbot run
--slack-http`` does with its one application, so tests reach it over real HTTP. The loop is the
test's: objects bound to it (bolt's app, aiohttp sessions) work as they do in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = _Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


class _Server(uvicorn.Server):
    """Without uvicorn's signal handlers (pytest keeps Ctrl-C)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
