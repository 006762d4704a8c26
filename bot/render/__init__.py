"""Rendering for chat platforms: Markdown to platform markup, link policy, escaping, splitting.

One job per module: :mod:`~bot.render.markdown` renders (markdown-it-py parses),
:mod:`~bot.render.links` decides which addresses may be links, :mod:`~bot.render.escape`
makes text literal on each platform, :mod:`~bot.render.split` cuts long messages, and
:mod:`~bot.render.document` is the line structure they share.
"""
