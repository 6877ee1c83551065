import json

from shop.clock import now
from shop.db import run


def record(action: str, target: str = "", actor=None, **detail) -> None:
    """Append an audit record inside the caller's transaction, so it commits with the change.
    A plain INSERT: every order transition writes one, inside the write lock."""
    run(
        'INSERT INTO "audit_log" ("created_at", "actor_id", "action", "target", "detail") '
        "VALUES (?, ?, ?, ?, ?)",
        (
            now(),
            getattr(actor, "id", actor),
            action,
            target,
            json.dumps(detail, sort_keys=True, default=str, ensure_ascii=False),
        ),
    )
