"""Console users, their grants, sign-in sessions and the failed-sign-in rate limit.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second recommended
parameter set). A sign-in is refused *before* the password is checked once the account or
the client address has too many recent failures, so guessing cannot go faster than the limit;
the limit counts the last :data:`FAILURE_WINDOW` and lifts as failures age out of it. A
session's cookie holds a random token; the table holds its SHA-256 and an expiry the server
checks, whatever the browser does with the cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from console.errors import ConsoleError, UserError
from console.models import ConsoleGrant, ConsoleLoginFailure, ConsoleSession, ConsoleUser, Role

FAILURE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10
_HASHER = PasswordHasher()
# Checked against when the account does not exist, so a wrong name costs what a wrong password
# costs (no timing oracle for which accounts exist).
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


class SignInRefused(ConsoleError):
    """Too many failed sign-ins: ``retry_after_s`` until the oldest counted one ages out."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user: ``grants`` maps each workspace they may see to their role in it."""

    user_id: int
    email: str
    grants: dict[str, Role] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UserSummary:
    email: str
    has_password: bool
    grants: dict[str, Role]


def normalize_email(email: str) -> str:
    """The sign-in name as stored: trimmed and lower-cased; UserError when it is no address."""
    value = email.strip().lower()
    if "@" not in value or value.startswith("@") or value.endswith("@") or " " in value:
        raise UserError(f"{email!r} is not an email address")
    return value


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleUsers:
    """Users, grants, sessions and failed sign-ins in the database of ``engine``.

    ``attempts`` / ``attempts_per_ip``: failed sign-ins allowed per account / per client
    address within :data:`FAILURE_WINDOW` before further ones are refused unchecked.
    """

    def __init__(self, engine: Engine, *, attempts: int = 5, attempts_per_ip: int = 20) -> None:
        self.engine = engine
        self.attempts = attempts
        self.attempts_per_ip = attempts_per_ip

    # --- users and grants (supportbot admin) --------------------------------------------------
    def add_user(
        self, email: str, *, password: str | None, workspace: str, role: Role = Role.VIEWER
    ) -> None:
        """Create a user with one grant; UserError if the email is taken or the password weak."""
        name = normalize_email(email)
        hashed = _HASHER.hash(_checked_password(password)) if password is not None else None
        with Session(self.engine) as session:
            if session.exec(select(ConsoleUser).where(ConsoleUser.email == name)).first():
                raise UserError(
                    f"{name} exists already: grant another workspace with "
                    "`supportbot admin grant`, or change the password with `admin set-password`"
                )
            user = ConsoleUser(email=name, password_hash=hashed, created_at=_now())
            session.add(user)
            session.flush()
            assert user.id is not None
            session.add(
                ConsoleGrant(user_id=user.id, workspace=workspace, role=role, created_at=_now())
            )
            session.commit()

    def set_password(self, email: str, password: str) -> None:
        """Replace the password and end the user's sessions."""
        hashed = _HASHER.hash(_checked_password(password))
        with Session(self.engine) as session:
            user = self._user(session, email)
            user.password_hash = hashed
            session.add(user)
            session.execute(delete(ConsoleSession).where(col(ConsoleSession.user_id) == user.id))
            session.commit()

    def grant(self, email: str, workspace: str, role: Role) -> None:
        """Give ``email`` ``role`` in ``workspace`` (replacing the role it had there)."""
        with Session(self.engine) as session:
            user = self._user(session, email)
            existing = session.exec(
                select(ConsoleGrant).where(
                    ConsoleGrant.user_id == user.id, ConsoleGrant.workspace == workspace
                )
            ).first()
            if existing is not None:
                existing.role = role
                session.add(existing)
            else:
                assert user.id is not None
                session.add(
                    ConsoleGrant(user_id=user.id, workspace=workspace, role=role, created_at=_now())
                )
            session.commit()

    def revoke(self, email: str, workspace: str) -> None:
        with Session(self.engine) as session:
            user = self._user(session, email)
            result = session.execute(
                delete(ConsoleGrant).where(
                    col(ConsoleGrant.user_id) == user.id, col(ConsoleGrant.workspace) == workspace
                )
            )
            if not getattr(result, "rowcount", 0):
                raise UserError(f"{user.email} has no grant in workspace {workspace!r}")
            session.commit()

    def remove(self, email: str) -> None:
        """Delete the user, their grants and their sessions."""
        with Session(self.engine) as session:
            user = self._user(session, email)
            session.execute(delete(ConsoleGrant).where(col(ConsoleGrant.user_id) == user.id))
            session.execute(delete(ConsoleSession).where(col(ConsoleSession.user_id) == user.id))
            session.delete(user)
            session.commit()

    def list_users(self) -> list[UserSummary]:
        with Session(self.engine) as session:
            users = session.exec(select(ConsoleUser).order_by(col(ConsoleUser.email))).all()
            grants = session.exec(select(ConsoleGrant)).all()
        by_user: dict[int, dict[str, Role]] = {}
        for g in grants:
            by_user.setdefault(g.user_id, {})[g.workspace] = Role(g.role)
        return [
            UserSummary(u.email, u.password_hash is not None, by_user.get(u.id or 0, {}))
            for u in users
        ]

    def _user(self, session: Session, email: str) -> ConsoleUser:
        name = normalize_email(email)
        user = session.exec(select(ConsoleUser).where(ConsoleUser.email == name)).first()
        if user is None:
            raise UserError(f"there is no console user {name} (see `supportbot admin list`)")
        return user

    # --- sign-in ------------------------------------------------------------------------------
    def authenticate(self, email: str, password: str, *, ip: str) -> int | None:
        """The user id when ``password`` is right; None when it is not (recorded as a failure).

        Raises :class:`SignInRefused` without checking anything when the account or ``ip``
        has reached its limit of failures.
        """
        try:
            name = normalize_email(email)
        except UserError:
            name = email.strip().lower()[:200]
        now = _now()
        self._check_limits(name, ip, now)
        with Session(self.engine) as session:
            user = session.exec(select(ConsoleUser).where(ConsoleUser.email == name)).first()
            stored = user.password_hash if user is not None else None
            try:
                _HASHER.verify(stored or _DUMMY_HASH, password)
                ok = stored is not None
            except (VerificationError, InvalidHashError):
                ok = False
            if not ok or user is None:
                session.add(ConsoleLoginFailure(email=name, ip=ip, at=now))
                session.commit()
                return None
            if _HASHER.check_needs_rehash(stored or ""):
                user.password_hash = _HASHER.hash(password)
                session.add(user)
            # A success clears the account's failures (the address's stay counted).
            session.execute(
                delete(ConsoleLoginFailure).where(col(ConsoleLoginFailure.email) == name)
            )
            session.commit()
            return user.id

    def _check_limits(self, name: str, ip: str, now: datetime) -> None:
        since = now - FAILURE_WINDOW
        with Session(self.engine) as session:
            session.execute(delete(ConsoleLoginFailure).where(col(ConsoleLoginFailure.at) < since))
            session.commit()
            for column, value, limit, what in (
                (ConsoleLoginFailure.email, name, self.attempts, "this account"),
                (ConsoleLoginFailure.ip, ip, self.attempts_per_ip, "this address"),
            ):
                count, oldest = session.execute(
                    select(func.count(), func.min(ConsoleLoginFailure.at)).where(
                        col(column) == value, col(ConsoleLoginFailure.at) >= since
                    )
                ).one()
                if count >= limit:
                    wait = _aware(oldest) + FAILURE_WINDOW - now
                    seconds = max(int(wait.total_seconds()) + 1, 1)
                    raise SignInRefused(
                        f"Too many failed sign-ins for {what}: try again in "
                        f"{(seconds + 59) // 60} min.",
                        seconds,
                    )

    def check_address(self, ip: str) -> None:
        """Raises :class:`SignInRefused` when ``ip`` has reached its limit of failures (a
        Slack sign-in is refused from an address that has, like a password one)."""
        self._check_limits("", ip, _now())

    def record_failure(self, name: str, ip: str) -> None:
        """Count a failed sign-in of ``name`` (an email, or ``slack:TEAM``) from ``ip``."""
        with Session(self.engine) as session:
            session.add(ConsoleLoginFailure(email=name[:200], ip=ip, at=_now()))
            session.commit()

    def slack_user(
        self, *, email: str, slack_user_id: str, workspace: str, email_verified: bool = True
    ) -> int:
        """The user signing in with Slack as a person of ``workspace``'s Slack team; given a
        viewer grant on ``workspace`` if they had none there (admins are granted from the CLI).

        Found by their Slack user id; else an account with the same email is linked to it only
        when Slack verified that email and the account already has a grant on ``workspace``
        (an admin gave that address this workspace): otherwise any Slack workspace could
        claim any console account by its email. Else a user without password is created.
        UserError (one line) when the email belongs to an account that cannot be linked.
        """
        name = normalize_email(email)
        with Session(self.engine) as session:
            user = session.exec(
                select(ConsoleUser).where(ConsoleUser.slack_user_id == slack_user_id)
            ).first()
            if user is None:
                user = session.exec(select(ConsoleUser).where(ConsoleUser.email == name)).first()
                if user is not None:
                    granted = session.exec(
                        select(ConsoleGrant).where(
                            ConsoleGrant.user_id == user.id, ConsoleGrant.workspace == workspace
                        )
                    ).first()
                    if not email_verified or user.slack_user_id is not None or granted is None:
                        raise UserError(
                            f"{name} already has a console account that is not linked to this "
                            "Slack workspace: sign in with its password."
                        )
                    user.slack_user_id = slack_user_id
                else:
                    user = ConsoleUser(email=name, slack_user_id=slack_user_id, created_at=_now())
                session.add(user)
                session.flush()
            assert user.id is not None
            has = session.exec(
                select(ConsoleGrant).where(
                    ConsoleGrant.user_id == user.id, ConsoleGrant.workspace == workspace
                )
            ).first()
            if has is None:
                session.add(
                    ConsoleGrant(
                        user_id=user.id, workspace=workspace, role=Role.VIEWER, created_at=_now()
                    )
                )
            session.commit()
            return user.id

    # --- sessions -----------------------------------------------------------------------------
    def start_session(self, user_id: int, lifetime: timedelta) -> str:
        """A new session's cookie token (random, 256 bits); expired sessions are dropped."""
        token = secrets.token_urlsafe(32)
        now = _now()
        with Session(self.engine) as session:
            session.execute(delete(ConsoleSession).where(col(ConsoleSession.expires_at) < now))
            session.add(
                ConsoleSession(
                    token_hash=token_hash(token),
                    user_id=user_id,
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )
            session.commit()
        return token

    def end_session(self, token: str) -> None:
        with Session(self.engine) as session:
            session.execute(
                delete(ConsoleSession).where(col(ConsoleSession.token_hash) == token_hash(token))
            )
            session.commit()

    def viewer_of(self, token: str) -> Viewer | None:
        """The user of a live session and their grants; None for an unknown or expired one."""
        with Session(self.engine) as session:
            row = session.exec(
                select(ConsoleSession, ConsoleUser)
                .join(ConsoleUser, col(ConsoleUser.id) == ConsoleSession.user_id)
                .where(ConsoleSession.token_hash == token_hash(token))
            ).first()
            if row is None:
                return None
            stored, user = row
            if _aware(stored.expires_at) <= _now():
                return None
            grants = session.exec(select(ConsoleGrant).where(ConsoleGrant.user_id == user.id)).all()
        assert user.id is not None
        return Viewer(user.id, user.email, {g.workspace: Role(g.role) for g in grants})


def _checked_password(password: str | None) -> str:
    if password is None or len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    return password
