import json

from shop.audit.models import AuditLog


def record(action: str, target: str = "", actor=None, **detail) -> AuditLog:
    """Append an audit record inside the caller's transaction, so it commits with the change."""
    actor_id = getattr(actor, "id", actor)
    return AuditLog.create(
        actor_id=actor_id,
        action=action,
        target=target,
        detail=json.dumps(detail, sort_keys=True, default=str, ensure_ascii=False),
    )


def recent(limit: int = 50, action_prefix: str | None = None):
    query = AuditLog.select().order_by(AuditLog.id.desc()).limit(limit)
    if action_prefix:
        query = query.where(AuditLog.action.startswith(action_prefix))
    return list(query)
