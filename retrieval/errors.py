"""Errors of the retrieval package.

Every failure a user can cause or meet (an unknown workspace, a broken file, a model mismatch,
a server that is down) is a :class:`RetrievalError` whose message is one line that says what
happened and what to do, so the CLI and the bots can show it as it is.
"""

from __future__ import annotations


class RetrievalError(Exception):
    """Base class of every error raised by :mod:`retrieval`."""


class UnknownWorkspaceError(RetrievalError):
    """The workspace (and so its Weaviate tenant) does not exist."""


class EmbeddingModelMismatchError(RetrievalError):
    """A workspace was indexed with another embedding model than the one configured now."""


class BadDocumentError(RetrievalError):
    """A file or record cannot be ingested (unreadable, binary, empty, too large, malformed)."""


class StoreUnavailableError(RetrievalError):
    """Weaviate could not be started or reached."""


class EmbeddingError(RetrievalError):
    """The embedding model or endpoint failed."""


class LLMError(RetrievalError):
    """The chat model endpoint failed or timed out."""


class WeaviateUnreachableError(StoreUnavailableError):
    """No Weaviate answers right now (down, restarting or moved); the connection retries."""
