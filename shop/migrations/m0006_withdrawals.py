"""Withdrawals of commission."""

from shop.withdrawals.models import Withdrawal

TABLES = [Withdrawal]


def up(database):
    database.create_tables(TABLES)
