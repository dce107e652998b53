"""The month's chart by day (pygal, drawn on the server as SVG, no script): per day, the sales,
the fees, and the refunds and chargebacks of one currency, in major units."""
from __future__ import annotations

import calendar
import re
from datetime import date

import pygal
from pygal.style import Style

from bridge.ledger.month import Day
from bridge.domain.money import exponent
from bridge.web.console.fmt import money, to_major

_SCRIPT = re.compile(rb"<script\b.*?</script>|<script\b[^>]*/>", re.S)

_STYLE = Style(
    background="#ffffff", plot_background="#ffffff", foreground="#1f2933",
    foreground_strong="#1f2933", foreground_subtle="#52606d",
    # Sales, fees, refunds & chargebacks: distinguishable with common colour blindness.
    colors=("#2f6f4f", "#c58b00", "#b3261e"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=13, major_label_font_size=13, legend_font_size=14, title_font_size=16,
    value_font_size=12, tooltip_font_size=12,
)


def month_chart(year: int, month: int, currency: str, days: list[Day], narrow: bool = False) -> bytes:
    """One column per day: sales up, fees and money given back down (stacked, so a column is
    wide enough to read). ``narrow`` draws it for a phone: fewer pixels, so larger text."""
    n = calendar.monthrange(year, month)[1]
    by_day = {d.day: d for d in days}
    series = {"Sales": [], "Fees": [], "Refunds and chargebacks": []}
    for i in range(1, n + 1):
        d = by_day.get(date(year, month, i))
        for name, attr in (("Sales", "gross"), ("Fees", "fees"), ("Refunds and chargebacks", "refunds")):
            if d is None:
                series[name].append(None)
                continue
            minor = d.gross if attr == "gross" else (d.fees if attr == "fees" else d.refunds + d.chargebacks)
            series[name].append(float(to_major(minor, currency)) if minor else None)
    chart = pygal.StackedBar(
        style=_STYLE, width=420 if narrow else 960, height=380 if narrow else 360, js=(),
        disable_xml_declaration=False,
        title=f"{currency} by day, {calendar.month_abbr[month]} {year} (UTC)" if narrow
        else f"{calendar.month_name[month]} {year}, {currency}, by day (UTC)",
        x_title="Day of the month", legend_at_bottom=True, legend_at_bottom_columns=1 if narrow else 3,
        show_minor_x_labels=False, x_labels_major_every=7 if narrow else 5,
        value_formatter=lambda v: money(int(round(v * 10 ** exponent(currency))), currency) if v is not None else "",
        print_values=False, margin=16, spacing=8, truncate_legend=-1, truncate_label=-1,
    )
    chart.x_labels = [str(i) for i in range(1, n + 1)]
    for name, values in series.items():
        chart.add(name, values)
    # pygal always embeds its tooltip script and config; an <img> never runs them, and the page
    # serves no script at all, so they are dropped.
    return _SCRIPT.sub(b"", chart.render())

