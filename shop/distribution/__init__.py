"""Distribution: invite links and referral binding, multi-level commission, the distributor's
page and the staff's view of uplines and downlines.

- `referrals`: `/r/<code>` cookies, binding a referrer (first touch wins, never a cycle) and
  staff changing it, the chain above and the downline below a user.
- `rates`: the commission rates per depth (setting `commission.rates`), per product, and the
  hook through which distributor levels change a beneficiary's rate.
- `commission`: the money. Pending at payment, available at settlement, reversed or clawed
  back on refund, each movement one ledger journal, capped by the order's margin.
- `overview`, `chart`: what the distributor page shows.
- `checks`: the audit rules for commission.
"""
