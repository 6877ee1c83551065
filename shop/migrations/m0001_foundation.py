"""Foundation tables: settings, audit log."""

from shop.audit.models import AuditLog
from shop.settings.models import Setting

TABLES = [Setting, AuditLog]


def up(database):
    database.create_tables(TABLES)
