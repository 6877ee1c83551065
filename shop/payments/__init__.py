"""Payments: gateways offered by plugins, idempotent crediting of their callbacks, wallet
top-ups."""
