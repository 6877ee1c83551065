"""Distributor levels and referral credit points: the levels and their fixed prices, referral
awards and violations; a user's level; the points an order used."""

from shop.accounts.models import User
from shop.levels.models import Level, LevelPrice
from shop.migrations import add_missing_columns
from shop.orders.models import Order
from shop.points.models import ReferralAward, Violation

TABLES = [Level, LevelPrice, ReferralAward, Violation]


def up(database):
    database.create_tables(TABLES)
    add_missing_columns(User, "level_id")
    add_missing_columns(Order, "points_used", "points_value")
