"""Staff accounts of the admin pages: argon2 passwords, server-side sessions, CSRF tokens, login rate limiting.

A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256, the
user and the session's CSRF token, which every admin form sends back. Failed logins are
counted per user name and per client address over a sliding window; past the limit a login is
refused (429) before the password is even checked. Passwords are never logged nor stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute

from ._db import read_session, write_session
from ._errors import ConflictError, InvalidError, PlatformError
from ._models import AdminSessionRow, AdminUserRow, LoginAttemptRow, utcnow

Role = Literal["admin", "analyst"]
ROLES: tuple[Role, ...] = ("admin", "analyst")
MIN_PASSWORD_LENGTH = 10
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,99}$")
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class UnauthorizedError(PlatformError):
    """No valid session, wrong credentials (401)."""

    status = 401
    code = "unauthorized"


class ForbiddenError(PlatformError):
    """A valid session without the role, or a missing or wrong CSRF token (403)."""

    status = 403
    code = "forbidden"


class TooManyAttemptsError(PlatformError):
    """Too many failed logins for this user name or client address (429)."""

    status = 429
    code = "too_many_attempts"


@dataclass(frozen=True)
class AdminUser:
    """A logged-in staff member; ``csrf`` is the session's CSRF token."""

    id: int
    username: str
    role: str
    csrf: str

    def require(self, role: Role) -> None:
        """Raise `ForbiddenError` unless this user has ``role`` (admin has every role)."""
        if role == "admin" and self.role != "admin":
            raise ForbiddenError(f"this page is for admins; {self.username!r} is an {self.role}", code="admin_only")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_HASHER.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AdminAuth:
    """Accounts, logins and sessions of the admin pages on one database."""

    def __init__(
        self,
        engine: Engine,
        session_hours: float = 8.0,
        max_failures: int = 5,
        max_client_failures: int = 20,
        window_minutes: float = 15.0,
    ) -> None:
        self.engine = engine
        self.session_hours = session_hours
        self.max_failures = max_failures
        self.max_client_failures = max_client_failures
        self.window = timedelta(minutes=window_minutes)

    # ------------------------------------------------------------------ accounts
    def add_user(self, username: str, password: str, role: str = "analyst") -> None:
        """Create a staff account; `InvalidError` for a bad name, role or short password, 409 if it exists."""
        if not _USERNAME.match(username):
            raise InvalidError(
                f"username {username!r}: 2-100 letters, digits or _.@- starting with a letter or digit",
                field="username",
            )
        if role not in ROLES:
            raise InvalidError(f"role {role!r}: must be one of {', '.join(ROLES)}", field="role")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidError(f"password: at least {MIN_PASSWORD_LENGTH} characters", field="password")
        try:
            with write_session(self.engine) as session:
                session.add(AdminUserRow(username=username, password_hash=_HASHER.hash(password), role=role))
        except IntegrityError as exc:
            raise ConflictError(f"username {username!r} exists already", code="user_exists", field="username") from exc

    def set_password(self, username: str, password: str) -> None:
        """Change a password and end every session of the account."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidError(f"password: at least {MIN_PASSWORD_LENGTH} characters", field="password")
        with write_session(self.engine) as session:
            user = session.scalar(select(AdminUserRow).where(AdminUserRow.username == username))
            if user is None:
                raise InvalidError(f"no staff account {username!r}", field="username")
            user.password_hash = _HASHER.hash(password)
            session.execute(delete(AdminSessionRow).where(AdminSessionRow.user_id == user.id))

    def users(self) -> list[tuple[str, str]]:
        """(username, role) of every account, by name."""
        with read_session(self.engine) as session:
            rows = session.execute(select(AdminUserRow.username, AdminUserRow.role).order_by(AdminUserRow.username))
            return [(u, r) for u, r in rows]

    # ------------------------------------------------------------------ login
    def _failures(self, column: InstrumentedAttribute[str], value: str, since: datetime) -> int:
        with read_session(self.engine) as session:
            return int(
                session.scalar(
                    select(func.count()).where(
                        column == value, LoginAttemptRow.ok.is_(False), LoginAttemptRow.at >= since
                    )
                )
                or 0
            )

    def login(self, username: str, password: str, client: str) -> tuple[str, AdminUser]:
        """A new session token and its user, or 401 (wrong credentials) / 429 (too many failures)."""
        client = client[:100] or "unknown"
        username = username.strip()[:100]
        since = utcnow() - self.window
        if (
            self._failures(LoginAttemptRow.username, username, since) >= self.max_failures
            or self._failures(LoginAttemptRow.client, client, since) >= self.max_client_failures
        ):
            minutes = round(self.window.total_seconds() / 60)
            raise TooManyAttemptsError(f"too many failed logins; try again in {minutes} minutes")
        with read_session(self.engine) as session:
            user = session.scalar(select(AdminUserRow).where(AdminUserRow.username == username))
        ok = _verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with write_session(self.engine) as session:  # the attempt is recorded whatever the outcome
            session.add(LoginAttemptRow(username=username, client=client, ok=ok))
            if ok and user is not None:
                expires = utcnow() + timedelta(hours=self.session_hours)
                session.add(AdminSessionRow(token_hash=_token_hash(token), user_id=user.id, csrf_token=csrf,
                                            expires_at=expires))
                if _HASHER.check_needs_rehash(user.password_hash):
                    session.get_one(AdminUserRow, user.id).password_hash = _HASHER.hash(password)
        if not ok or user is None:
            raise UnauthorizedError("wrong user name or password", code="bad_credentials")
        return token, AdminUser(user.id, user.username, user.role, csrf)

    def session(self, token: str | None) -> AdminUser | None:
        """The user of a live session token, or None."""
        if not token:
            return None
        with read_session(self.engine) as session:
            row = session.execute(
                select(AdminSessionRow, AdminUserRow)
                .join(AdminUserRow, AdminUserRow.id == AdminSessionRow.user_id)
                .where(AdminSessionRow.token_hash == _token_hash(token))
            ).first()
        if row is None:
            return None
        s, user = row
        if _aware(s.expires_at) <= utcnow():
            return None
        return AdminUser(user.id, user.username, user.role, s.csrf_token)

    def logout(self, token: str | None) -> None:
        """End a session (no-op for an unknown token)."""
        if token:
            with write_session(self.engine) as session:
                session.execute(delete(AdminSessionRow).where(AdminSessionRow.token_hash == _token_hash(token)))

    @staticmethod
    def check_csrf(user: AdminUser, sent: str | None) -> None:
        """Raise `ForbiddenError` unless ``sent`` is the session's CSRF token."""
        if not sent or not hmac.compare_digest(sent, user.csrf):
            raise ForbiddenError("the form's CSRF token is missing or wrong; reload the page", code="csrf")
