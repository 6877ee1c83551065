"""Selling: catalog, card keys, orders and their events and items, payments, top-ups."""

from shop.catalog.models import Category, Product
from shop.inventory.models import CardKey
from shop.orders.models import DeliveryItem, Order, OrderEvent
from shop.payments.models import Payment, TopUp

TABLES = [Category, Product, CardKey, Order, OrderEvent, DeliveryItem, Payment, TopUp]


def up(database):
    database.create_tables(TABLES)
