"""Errors of the feedback package."""


class FeedbackError(Exception):
    """Base class of every error raised by :mod:`feedback`."""
