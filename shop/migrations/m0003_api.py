"""The signed API: API keys and the nonces they have used."""

from shop.api.models import ApiKey, ApiNonce

TABLES = [ApiKey, ApiNonce]


def up(database):
    database.create_tables(TABLES)
