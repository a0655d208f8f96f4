"""The pre-order state machine and its audit log.

::

    reserved -> deposit_paid -> confirmed -> delivered
    reserved | deposit_paid | confirmed -> cancelled -> refunded (when a deposit was paid)

Every transition is one conditional ``UPDATE preorder SET state = :to WHERE id = :id AND
state = :from`` and one ``order_event`` row in the same transaction: of two concurrent
transitions from one state only one updates a row, the other changes nothing and is refused.
"""

from __future__ import annotations

from sqlalchemy import CursorResult, update
from sqlalchemy.orm import Session

from ._errors import ConflictError
from ._models import ORDER_STATES, OrderEventRow, PreorderRow, utcnow

STATES = ORDER_STATES
TRANSITIONS: dict[str, frozenset[str]] = {
    "reserved": frozenset({"deposit_paid", "cancelled"}),
    "deposit_paid": frozenset({"confirmed", "cancelled"}),
    "confirmed": frozenset({"delivered", "cancelled"}),
    "delivered": frozenset(),
    "cancelled": frozenset({"refunded"}),
    "refunded": frozenset(),
}
CANCELLABLE = frozenset(s for s, targets in TRANSITIONS.items() if "cancelled" in targets)


def check_transition(order_id: str, from_state: str, to_state: str) -> None:
    """Raise `ConflictError` (field ``state``) unless ``from_state -> to_state`` is allowed."""
    if to_state not in TRANSITIONS.get(from_state, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(from_state, ()))) or "none (final state)"
        raise ConflictError(
            f"pre-order {order_id} is {from_state!r}: it cannot become {to_state!r} (allowed from {from_state!r}: "
            f"{allowed})",
            code="illegal_transition",
            field="state",
        )


def record_event(
    session: Session, order_id: str, from_state: str | None, to_state: str, actor: str, note: str = ""
) -> None:
    session.add(OrderEventRow(order_id=order_id, from_state=from_state, to_state=to_state, actor=actor, note=note))


def transition(
    session: Session, order_id: str, from_state: str, to_state: str, actor: str, note: str = ""
) -> bool:
    """Move the order from ``from_state`` to ``to_state`` and log it; False (nothing changed) if it is not there."""
    check_transition(order_id, from_state, to_state)
    result = session.execute(
        update(PreorderRow)
        .where(PreorderRow.id == order_id, PreorderRow.state == from_state)
        .values(state=to_state, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        return False
    record_event(session, order_id, from_state, to_state, actor, note)
    session.flush()
    return True
