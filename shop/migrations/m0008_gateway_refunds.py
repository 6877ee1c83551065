"""Refunds sent back through the payment gateway an order was paid with."""

from shop.payments.models import GatewayRefund

TABLES = [GatewayRefund]


def up(database):
    database.create_tables(TABLES)
