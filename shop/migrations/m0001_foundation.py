"""Foundation tables: settings, audit log, ledger."""

from shop.audit.models import AuditLog
from shop.ledger.models import Account, Entry, Journal
from shop.settings.models import Setting

TABLES = [Setting, AuditLog, Account, Journal, Entry]


def up(database):
    database.create_tables(TABLES)
