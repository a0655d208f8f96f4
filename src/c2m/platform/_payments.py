"""Payment providers for pre-order deposits: the `PaymentProvider` protocol and a local provider.

A provider must be idempotent by key: calling ``charge`` (or ``refund``) again with a key it has
seen returns the first call's reference and moves no money. The platform derives the keys from
the order (``preorder:<id>:deposit``, ``preorder:<id>:refund``), so a retried or concurrent
request can never charge or refund a deposit twice, whichever request gets there first.
"""

from __future__ import annotations

import uuid
from typing import Protocol, runtime_checkable

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from ._db import read_session, write_session
from ._errors import PlatformError
from ._models import LocalChargeRow


class PaymentError(PlatformError):
    """The payment provider declined or failed; nothing was charged (402)."""

    status = 402
    code = "payment_failed"


@runtime_checkable
class PaymentProvider(Protocol):
    """Moves money; amounts in fen (1/100 yuan); both calls idempotent by ``key``."""

    name: str

    def charge(self, amount_fen: int, key: str) -> str:
        """Charge ``amount_fen``; returns the provider's reference; raises `PaymentError` if declined."""
        ...

    def refund(self, reference: str, amount_fen: int, key: str) -> str:
        """Refund ``amount_fen`` of the charge ``reference``; returns the refund's reference."""
        ...


class LocalPaymentProvider:
    """A provider for development and tests that keeps its ledger in the platform's database (``local_payment``).

    ``decline=True`` makes every charge fail (to exercise the failure path). Idempotency is the
    ledger's unique ``key``: of concurrent calls with one key, one inserts, the others find its row.
    """

    name = "local"

    def __init__(self, engine: Engine, *, decline: bool = False) -> None:
        self.engine = engine
        self.decline = decline

    def _existing(self, key: str, kind: str, amount_fen: int) -> str | None:
        with read_session(self.engine) as session:
            row = session.scalar(select(LocalChargeRow).where(LocalChargeRow.key == key))
            if row is None:
                return None
            if row.kind != kind or row.amount_fen != amount_fen:
                raise PaymentError(
                    f"payment key {key!r} was used for a {row.kind} of {row.amount_fen} fen", field="Idempotency-Key"
                )
            return row.reference

    def _record(self, kind: str, amount_fen: int, key: str, refund_of: str | None = None) -> str:
        found = self._existing(key, kind, amount_fen)
        if found is not None:
            return found
        reference = f"local_{kind}_{uuid.uuid4().hex}"
        try:
            with write_session(self.engine) as session:
                session.add(
                    LocalChargeRow(reference=reference, key=key, kind=kind, amount_fen=amount_fen, refund_of=refund_of)
                )
        except IntegrityError:  # a concurrent call with the same key won
            found = self._existing(key, kind, amount_fen)
            if found is None:
                raise
            return found
        return reference

    def charge(self, amount_fen: int, key: str) -> str:
        if amount_fen <= 0:
            raise PaymentError(f"charge amount must be positive, got {amount_fen} fen", field="amount")
        if self.decline:
            raise PaymentError("the payment was declined by the provider (local provider set to decline)")
        return self._record("charge", amount_fen, key)

    def refund(self, reference: str, amount_fen: int, key: str) -> str:
        with read_session(self.engine) as session:
            charge = session.scalar(
                select(LocalChargeRow).where(LocalChargeRow.reference == reference, LocalChargeRow.kind == "charge")
            )
        if charge is None:
            raise PaymentError(f"unknown charge {reference!r}", field="reference")
        if amount_fen <= 0 or amount_fen > charge.amount_fen:
            raise PaymentError(
                f"refund of {amount_fen} fen is not within the charge's {charge.amount_fen} fen", field="amount"
            )
        return self._record("refund", amount_fen, key, refund_of=reference)
