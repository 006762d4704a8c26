"""Converters from the file formats companies keep knowledge in to Markdown-like text.

One module per format family (:mod:`.pdf`, :mod:`.office` for DOCX/PPTX/XLSX/CSV, :mod:`.hwpx`,
:mod:`.hwp`); each takes the file's bytes and returns ``(title, text)`` with headings as ``#``
lines, lists as ``-`` items and tables as Markdown table rows, the structure the chunker follows.
All of them work within :class:`.limits.FileLimits` and raise
:class:`~retrieval.errors.BadDocumentError` (one line naming the file) for anything that cannot
become useful text or goes over a limit.
"""
