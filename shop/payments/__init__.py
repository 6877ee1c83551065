"""Payments: gateways offered by plugins, idempotent crediting of their callbacks, wallet
top-ups, and refunds sent back through the gateway an order was paid with."""
