"""Consumer identity: a one-time code sent to a phone or e-mail, then a person session.

A person is known only by `person_hash` of their contact. Asking for a code stores its SHA-256
in ``login_code`` (one pending code per person) and hands the code to a `CodeSender`. Sends are
throttled by one conditional ``UPDATE`` of that row (at most one per ``code_resend_seconds``
and ``code_max_per_hour`` per hour), so racing requests cannot beat the limits. Verifying
counts the try with a conditional ``UPDATE`` (at most ``code_max_attempts``), consumes the code
once and opens a session: a random token that the database keeps only as its SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import CursorResult, Engine, case, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ._db import read_session, single_read, write_session
from ._errors import InvalidError, PlatformError
from ._models import CodeOutboxRow, LoginCodeRow, PersonSessionRow, utcnow
from ._settings import Settings

log = logging.getLogger("c2m.platform.identity")

SIGN_IN = "sign_in"
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CODE = re.compile(r"^[0-9]{6}$")
HOUR = timedelta(hours=1)


def normalize_contact(contact: str) -> str:
    """A phone number (digits, optional leading +) or an e-mail address, normalised; else `InvalidError`."""
    text = contact.strip()
    phone = re.sub(r"[\s\-().]", "", text)
    if _PHONE.match(phone):
        return phone
    if _EMAIL.match(text):
        return text.lower()
    raise InvalidError(
        f"contact {contact!r} is neither a phone number (6-15 digits, optional +) nor an e-mail address",
        code="invalid_contact",
        field="contact",
    )


def person_hash(contact: str, salt: str = "c2m") -> str:
    """The SHA-256 of the salted, normalised contact: the platform never stores the contact itself."""
    return hashlib.sha256(f"{salt}:{normalize_contact(contact)}".encode()).hexdigest()


def mask_contact(contact: str) -> str:
    """``138****8000`` or ``a***@example.cn``: enough for a person to recognise their own contact."""
    text = normalize_contact(contact)
    if "@" in text:
        name, _, domain = text.partition("@")
        return f"{name[:1]}***@{domain}"
    return f"{text[:3]}****{text[-4:]}" if len(text) > 7 else f"***{text[-2:]}"


@dataclass(frozen=True)
class Person:
    """A verified person: ``hash`` is `person_hash` of their contact; ``expires_at`` ends their session."""

    hash: str
    expires_at: datetime | None = None


class SignInRequiredError(PlatformError):
    """No session, an unknown or revoked token, or an expired one (401); ``field`` names where it was expected."""

    status = 401
    code = "sign_in_required"


class CodeRefusedError(PlatformError):
    """A wrong, expired or missing one-time code (401, field ``code``)."""

    status = 401
    code = "wrong_code"


class TooManyRequestsError(PlatformError):
    """Codes asked for too often, or a code tried too often (429)."""

    status = 429
    code = "too_many_requests"


class CodeSender(Protocol):
    """Delivers a one-time code to a phone number or e-mail address (SMS, e-mail, or a log in development)."""

    def send(self, contact: str, code: str, purpose: str) -> None: ...


class LogCodeSender:
    """Development sender: logs the code and keeps it in ``code_outbox`` under the contact's hash."""

    name = "log"

    def __init__(self, engine: Engine, salt: str) -> None:
        self.engine = engine
        self.salt = salt

    def send(self, contact: str, code: str, purpose: str) -> None:
        log.warning("one-time code %s for %s (%s) [dev: code_sender=log]", code, mask_contact(contact), purpose)
        with write_session(self.engine) as session:
            session.add(CodeOutboxRow(person_hash=person_hash(contact, self.salt), code=code, purpose=purpose))


def make_code_sender(engine: Engine, settings: Settings) -> CodeSender:
    """The code sender named in the settings (``log``: `LogCodeSender` in this database)."""
    return LogCodeSender(engine, settings.contact_salt)


def read_outbox(engine: Engine, contact: str, salt: str = "c2m") -> list[str]:
    """The codes the development sender 'sent' to ``contact``, newest first."""
    with read_session(engine) as session:
        rows = session.scalars(
            select(CodeOutboxRow.code)
            .where(CodeOutboxRow.person_hash == person_hash(contact, salt))
            .order_by(CodeOutboxRow.id.desc())
        )
        return list(rows)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _code_hash(person: str, purpose: str, code: str) -> str:
    return _sha(f"{person}:{purpose}:{code}")


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _wait_text(seconds: float) -> str:
    seconds = max(1, round(seconds))
    return f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} minutes"


@dataclass(frozen=True)
class CodeSent:
    """A code is on its way: valid until ``expires_at``; the next may be asked for after ``resend_after``."""

    expires_at: datetime
    resend_after: datetime


class IdentityService:
    """One-time codes and person sessions (mixed into `Platform`): ``identity_*`` methods."""

    engine: Engine
    settings: Settings
    code_sender: CodeSender

    # ------------------------------------------------------------------ codes
    def identity_request_code(self, contact: str, purpose: str = SIGN_IN) -> CodeSent:
        """Send a fresh 6-digit code to ``contact`` (it replaces any earlier one); 429 when asked too often."""
        person = person_hash(contact, self.settings.contact_salt)
        code = f"{secrets.randbelow(10**6):06d}"
        now = utcnow()
        resend = timedelta(seconds=self.settings.code_resend_seconds)
        expires = now + timedelta(minutes=self.settings.code_minutes)
        fresh = {
            "code_hash": _code_hash(person, purpose, code), "purpose": purpose, "sent_at": now, "expires_at": expires,
            "attempts": 0, "consumed_at": None,
        }
        new_window = LoginCodeRow.window_start <= now - HOUR
        with write_session(self.engine) as session:
            sent = _rowcount(
                session.execute(
                    update(LoginCodeRow)
                    .where(
                        LoginCodeRow.person_hash == person,
                        LoginCodeRow.sent_at <= now - resend,
                        or_(new_window, LoginCodeRow.window_sends < self.settings.code_max_per_hour),
                    )
                    .values(
                        **fresh,
                        window_start=case((new_window, now), else_=LoginCodeRow.window_start),
                        window_sends=case((new_window, 1), else_=LoginCodeRow.window_sends + 1),
                    )
                    .execution_options(synchronize_session=False)
                )
            )
            if not sent:
                self._insert_first_code(session, person, fresh, now)
        self.code_sender.send(contact, code, purpose)
        return CodeSent(expires, now + resend)

    def _insert_first_code(self, session: Session, person: str, fresh: dict[str, object], now: datetime) -> None:
        """The person's first code, or the throttle's refusal (429) if they have a recent one."""
        row = session.get(LoginCodeRow, person, populate_existing=True)
        if row is not None:
            raise self._throttled(row, now)
        session.add(LoginCodeRow(person_hash=person, window_start=now, window_sends=1, **fresh))
        try:
            session.flush()
        except IntegrityError as exc:  # a concurrent first request won
            raise TooManyRequestsError(
                "a code was just sent to this contact; wait before asking for another", code="too_many_codes",
                field="contact",
            ) from exc

    def _throttled(self, row: LoginCodeRow, now: datetime) -> TooManyRequestsError:
        since = (now - _aware(row.sent_at)).total_seconds()
        if since < self.settings.code_resend_seconds:
            wait = self.settings.code_resend_seconds - since
            message = f"a code was sent to this contact {round(since)} s ago; ask again in {_wait_text(wait)}"
        else:
            wait = (_aware(row.window_start) + HOUR - now).total_seconds()
            message = (
                f"{self.settings.code_max_per_hour} codes were sent to this contact within the hour; "
                f"ask again in {_wait_text(wait)}"
            )
        return TooManyRequestsError(message, code="too_many_codes", field="contact")

    def identity_verify(self, contact: str, code: str, purpose: str = SIGN_IN) -> tuple[str, Person]:
        """A session token and its `Person` for the right code; 401 (field ``code``) or 429 otherwise."""
        person = person_hash(contact, self.settings.contact_salt)
        code = code.strip()
        if not _CODE.match(code):
            raise InvalidError("code: enter the 6 digits of the code we sent", code="invalid_code", field="code")
        now = utcnow()
        token = secrets.token_urlsafe(32)
        expires = now + timedelta(days=self.settings.person_session_days)
        with write_session(self.engine) as session:
            tried = _rowcount(
                session.execute(
                    update(LoginCodeRow)
                    .where(
                        LoginCodeRow.person_hash == person,
                        LoginCodeRow.consumed_at.is_(None),
                        LoginCodeRow.expires_at > now,
                        LoginCodeRow.attempts < self.settings.code_max_attempts,
                    )
                    .values(attempts=LoginCodeRow.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
            )
            row = session.get(LoginCodeRow, person, populate_existing=True)
            refusal = self._refusal(row, tried, now)
            if refusal is None and row is not None:
                if not hmac.compare_digest(row.code_hash, _code_hash(person, purpose, code)):
                    left = self.settings.code_max_attempts - row.attempts
                    refusal = CodeRefusedError(
                        f"wrong code; {left} {'try' if left == 1 else 'tries'} left"
                        if left else "wrong code, and that was the last try: ask for a new code",
                        field="code",
                    )
                elif self._consume(session, person, row.code_hash, now):
                    session.add(PersonSessionRow(token_hash=_sha(token), person_hash=person, expires_at=expires))
                else:
                    refusal = CodeRefusedError("this code was used already; ask for a new code", code="code_used",
                                               field="code")
        if refusal is not None:  # raised after the commit: the counted try stays counted
            raise refusal
        return token, Person(person, expires)

    def _refusal(self, row: LoginCodeRow | None, tried: int, now: datetime) -> PlatformError | None:
        """Why a try was not counted (no code, used, expired, too many tries), or None if it was."""
        if tried:
            return None
        if row is None or row.consumed_at is not None:
            return CodeRefusedError("no code is pending for this contact; ask for a code first", code="no_code",
                                    field="code")
        if _aware(row.expires_at) <= now:
            return CodeRefusedError(
                f"the code has expired (codes last {self.settings.code_minutes:g} minutes); ask for a new code",
                code="code_expired", field="code",
            )
        return TooManyRequestsError(
            f"the code was tried {self.settings.code_max_attempts} times; ask for a new code",
            code="too_many_attempts", field="code",
        )

    def _consume(self, session: Session, person: str, code_hash: str, now: datetime) -> bool:
        """Mark the code used; False if a concurrent verification used it first."""
        return bool(
            _rowcount(
                session.execute(
                    update(LoginCodeRow)
                    .where(
                        LoginCodeRow.person_hash == person,
                        LoginCodeRow.code_hash == code_hash,
                        LoginCodeRow.consumed_at.is_(None),
                    )
                    .values(consumed_at=now)
                    .execution_options(synchronize_session=False)
                )
            )
        )

    def dev_outbox(self, contact: str) -> list[str]:
        """The codes the development sender 'sent' to ``contact``, newest first (``code_sender=log`` only)."""
        return read_outbox(self.engine, contact, self.settings.contact_salt)

    # ------------------------------------------------------------------ sessions
    def identity_person(self, token: str | None, field: str = "Authorization") -> Person:
        """The person of a live session token; `SignInRequiredError` naming ``field`` otherwise."""
        how = "POST /api/v1/identity/code {contact}, then POST /api/v1/identity/verify {contact, code}"
        if not token:
            raise SignInRequiredError(f"{field}: sign in first ({how}) and send the token", field=field)
        with single_read(self.engine) as session:
            row = session.get(PersonSessionRow, _sha(token))
        if row is None:
            raise SignInRequiredError(
                f"{field}: this session token is unknown or was revoked; sign in again", code="token_invalid",
                field=field,
            )
        if _aware(row.expires_at) <= utcnow():
            raise SignInRequiredError(f"{field}: the session has expired; sign in again", code="token_expired",
                                      field=field)
        return Person(row.person_hash, _aware(row.expires_at))

    def identity_sign_out(self, token: str | None) -> None:
        """End one session (no-op for an unknown token)."""
        if token:
            with write_session(self.engine) as session:
                session.execute(delete(PersonSessionRow).where(PersonSessionRow.token_hash == _sha(token)))

    def identity_sessions(self, person: Person) -> list[tuple[datetime, datetime]]:
        """(created, expires) of the person's sessions, oldest first."""
        with read_session(self.engine) as session:
            rows = session.execute(
                select(PersonSessionRow.created_at, PersonSessionRow.expires_at)
                .where(PersonSessionRow.person_hash == person.hash)
                .order_by(PersonSessionRow.created_at)
            )
            return [(_aware(c), _aware(e)) for c, e in rows]


def forget_identity(session: Session, person: str) -> int:
    """Delete the person's sessions, pending code and outbox entries; the number of rows deleted."""
    total = 0
    for model in (PersonSessionRow, LoginCodeRow, CodeOutboxRow):
        total += _rowcount(session.execute(delete(model).where(model.person_hash == person)))
    return total
