"""The distributor's earnings chart as numbers for an inline SVG: bars, labels, a scale.

Drawn on the server so the page needs no script, and with SVG presentation attributes only
(no style attribute), which the content security policy allows.
"""

WIDTH, HEIGHT = 600, 180
TOP, BOTTOM = 18, 22  # room for the scale label above and the dates below
GAP = 2


def bars(series: list[tuple[str, int]]) -> dict:
    """For [(YYYY-MM-DD, fen), ...]: each non-empty day's bar (x, y, width, height), date
    labels (x, text-anchor, MM-DD) at the first, middle and last day, and the largest day for
    the scale."""
    slot = WIDTH / max(len(series), 1)
    plot = HEIGHT - TOP - BOTTOM
    peak = max((amount for _, amount in series), default=0)
    drawn = []
    for i, (day, amount) in enumerate(series):
        if amount <= 0:
            continue
        height = max(round(plot * amount / peak, 1), 1)
        drawn.append(
            {
                "day": day,
                "amount": amount,
                "x": round(i * slot + GAP / 2, 1),
                "y": round(TOP + plot - height, 1),
                "width": round(slot - GAP, 1),
                "height": height,
            }
        )
    labels = []
    if series:  # first and last day flush with the edges, so neither is cut off
        labels = [(0, "start", series[0][0][5:]), (WIDTH, "end", series[-1][0][5:])]
        middle = len(series) // 2
        labels.insert(1, (round(middle * slot + slot / 2, 1), "middle", series[middle][0][5:]))
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "baseline": HEIGHT - BOTTOM,
        "peak": peak,
        "bars": drawn,
        "labels": labels,
    }
