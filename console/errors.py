"""The console package's one base exception."""

from __future__ import annotations


class ConsoleError(Exception):
    """A console operation was refused; the message says why, in one line."""


class UserError(ConsoleError):
    """A user or grant cannot be created, changed or found (``supportbot admin``)."""


class NotFoundError(ConsoleError):
    """No such object in this workspace (an answer, a source, a run, a draft): whether it
    exists in another workspace is not said, so ids cannot be probed. Pages answer 404."""


class InvalidInputError(ConsoleError):
    """A form's value was refused; the message says which and why. Pages show it (400)."""
