"""Kashop: a self-hosted storefront for resellers of digital goods."""


def create_app(overrides: dict | None = None):
    """Build the shop's Flask app (imported lazily so `import shop.x` stays light)."""
    from shop.app import create_app as build

    return build(overrides)
