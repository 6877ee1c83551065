"""Who did what, when: an append-only record of staff actions and order transitions."""

from shop.audit.service import record

__all__ = ["record"]
