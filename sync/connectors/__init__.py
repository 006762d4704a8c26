"""The connectors, by source kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync.connectors.base import Connector
from sync.errors import SourceConfigError


def connector_class(kind: str) -> type[Connector]:
    # Imported here: each connector pulls its own client library in.
    if kind == "folder":
        from sync.connectors.folder import FolderConnector

        return FolderConnector
    if kind == "web":
        from sync.connectors.web import WebConnector

        return WebConnector
    if kind == "slack":
        from sync.connectors.slack import SlackConnector

        return SlackConnector
    if kind == "discord":
        from sync.connectors.discord import DiscordConnector

        return DiscordConnector
    if kind == "notion":
        from sync.connectors.notion import NotionConnector

        return NotionConnector
    raise SourceConfigError(
        f"unknown source type {kind!r}: use folder, web, slack, discord or notion"
    )


def build_connector(
    kind: str, config: Mapping[str, Any], api_urls: Mapping[str, str] | None = None
) -> Connector:
    """The connector of a source, its options validated; ``api_urls`` by kind (settings)."""
    cls = connector_class(kind)
    return cls(cls.validate_config(config), api_url=(api_urls or {}).get(kind))
