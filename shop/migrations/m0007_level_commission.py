"""Commission rates per distributor level: a member of a level can earn its own rates."""

from shop.levels.models import Level
from shop.migrations import add_missing_columns


def up(database):
    add_missing_columns(Level, "commission_rates")
