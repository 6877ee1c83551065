"""Foundation tables: settings, audit log, users, throttles, plugin state, ledger."""

from shop.accounts.models import User
from shop.audit.models import AuditLog
from shop.ledger.models import Account, Entry, Journal
from shop.plugins.models import PluginState
from shop.security.throttle import Throttle
from shop.settings.models import Setting

TABLES = [Setting, AuditLog, User, Throttle, PluginState, Account, Journal, Entry]


def up(database):
    database.create_tables(TABLES)
