"""Withdrawals of commission: a referrer asks for their available commission, staff approve
and pay it out by hand (or reject it, and the money goes back), or the referrer moves it to
the wallet to spend in the shop.

Ledger path (DESIGN.md, money flow): commission_available → withdrawal_pending on request;
withdrawal_pending → shop:payout (what staff send) + shop:revenue (the fee) when paid, or
back to commission_available on rejection.
"""
