"""The console package's one base exception."""

from __future__ import annotations


class ConsoleError(Exception):
    """A console operation was refused; the message says why, in one line."""


class UserError(ConsoleError):
    """A user or grant cannot be created, changed or found (``supportbot admin``)."""
