"""The web console for the people who run the bot (issue 14): dashboards, conversations,
review, knowledge gaps, sources, settings and exports, per workspace, behind a sign-in.

:func:`console.app.build_console` builds the ASGI application; ``supportbot web`` serves it,
and ``supportbot run --slack-http`` serves it beside ``/slack/events`` on the same port.
"""
