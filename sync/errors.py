"""Errors of the sync package.

Every failure a user can cause or meet (an unknown source, a bad option, a service that keeps
refusing, a token that cannot be refreshed) is a :class:`SyncError` whose message is one line
saying what happened and what to do; the CLI prints it as it is and the source's status keeps it.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base class of every error raised by :mod:`sync`."""


class UnknownSourceError(SyncError):
    """No source of that name in the workspace."""


class SourceConfigError(SyncError):
    """A source's options are missing or invalid."""


class CredentialsError(SyncError):
    """Credentials are missing, cannot be decrypted, were rejected or could not be refreshed."""


class SourceUnavailableError(SyncError):
    """The service kept failing (or rate limiting) past the retry policy's patience."""


class SyncBusyError(SyncError):
    """Another sync of the same workspace holds its lock."""


class BlockedAddressError(SyncError):
    """A web source was about to connect to an address it may not fetch (private, loopback,
    link-local...); see :mod:`sync.addresses`."""


class MassDeletionError(SyncError):
    """A sync would remove more of a source's documents at once than the guard allows; nothing
    was removed (see :func:`sync.engine.mass_deletion`)."""


class FetchLimitError(SyncError):
    """A source downloaded more than its limits allow (one sitemap, one run)."""
