"""Distributor levels (DESIGN.md "Distribution"): a discount or a fixed price per product for
a level's members, automatic upgrades by spend or direct referrals, and staff setting a level.

`models` holds the levels and their fixed prices, `service` prices a unit for a member and
moves users between levels, `cli` and `admin_views` are the thin ways in.
"""
