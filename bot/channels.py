"""Per-channel settings: whether the bot answers only when mentioned, or every question."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.decide import ChannelMode
from bot.models import ChannelSetting


class ChannelSettings:
    """Reads and writes channel modes; a channel never configured answers on mention only."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def mode(self, platform: str, team_id: str, channel_id: str) -> ChannelMode:
        with Session(self._engine) as session:
            row = self._find(session, platform, team_id, channel_id)
        return ChannelMode(row.mode) if row else ChannelMode.MENTION

    def set_mode(self, platform: str, team_id: str, channel_id: str, mode: ChannelMode) -> None:
        with Session(self._engine) as session:
            row = self._find(session, platform, team_id, channel_id) or ChannelSetting(
                platform=platform, team_id=team_id, channel_id=channel_id, mode=mode.value
            )
            row.mode = mode.value
            session.add(row)
            session.commit()

    def any_answering_all(self, platform: str) -> bool:
        """Whether some channel of ``platform`` answers every question (Discord then needs the
        privileged Message Content intent: without it, unaddressed messages arrive empty)."""
        with Session(self._engine) as session:
            return (
                session.exec(
                    select(ChannelSetting.id)
                    .where(ChannelSetting.platform == platform)
                    .where(ChannelSetting.mode == ChannelMode.ALL_QUESTIONS.value)
                ).first()
                is not None
            )

    @staticmethod
    def _find(
        session: Session, platform: str, team_id: str, channel_id: str
    ) -> ChannelSetting | None:
        return session.exec(
            select(ChannelSetting)
            .where(ChannelSetting.platform == platform)
            .where(ChannelSetting.team_id == team_id)
            .where(ChannelSetting.channel_id == channel_id)
        ).first()
