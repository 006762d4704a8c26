"""Local stand-ins for external services, used by tests and benchmarks.

Exports are resolved lazily so that ``python -m tests.servers.openai_chat`` does not import the
module twice (runpy warns when the package has already imported its ``__main__`` module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.servers.openai_chat import FakeOpenAIServer, OpenAIChatSimulator, RecordedRequest

__all__ = ["FakeOpenAIServer", "OpenAIChatSimulator", "RecordedRequest"]


def __getattr__(name: str) -> Any:
    """Import the simulator on first use of one of the exported names."""
    if name in __all__:
        from tests.servers import openai_chat

        return getattr(openai_chat, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
