"""Orders: placing, paying, delivering, confirming, settling, refunding and expiring them.

Every change of an order's status goes through `shop.orders.state.transition`, the one state
machine function (DESIGN.md invariant 6).
"""
