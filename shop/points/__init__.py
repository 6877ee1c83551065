"""Referral credit points (DESIGN.md "Distribution"; invariant 2: points are a ledger unit).

Points are issued from the `points_pool` system account into users' `points` accounts: an
invited user who stays `points.referral_days` without a violation and with a completed order
earns `points.referral_award` for themselves and for their referrer, once (`maturation`).
Points pay part of an order at checkout and come back if the order does not go through
(`service`).

How points are accounted (DESIGN.md invariant 8). A point is not money: it never enters the
money ledger. Redeemed points are a discount the shop funds. An order's list price is
`unit_price × quantity`; the buyer pays `amount` in money and `points_used` points worth
`points_value` fen (`points.value` fen a point, fixed on the order when it is placed), so

    list price = amount + points_value

and the points go back to the pool (user points → points_pool, in the order's transaction).
The escrow only ever holds `amount`, and a settled order splits exactly that money:
supplier cost + commissions + shop revenue = amount. Reading invariant 8 with "amount paid"
as everything the buyer handed over, money and points, gives
supplier cost + commissions + points value + shop revenue = amount + points value: the
points value is revenue the shop gave up. Commission is computed from `amount`, the money
actually paid. Points never pay below the order's cost, so the supplier's share is always
covered by money and shop revenue is never negative.
"""
