"""Server-rendered SVG charts for the scorecard: no chart library, no script,
no inline style (colours come from classes in app.css). Every piece of text
is escaped by format_html."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

# Stacked from the bottom up; the class names carry the colours.
DAILY_SERIES = (
    ("paid_amount", "bar-paid"),
    ("held_amount", "bar-held"),
    ("pending_amount", "bar-pending"),
    ("refunded_amount", "bar-refunded"),
)


def ntd(value) -> str:
    return f"NT${float(value or 0):,.0f}"


def short_ntd(value) -> str:
    """Axis labels: NT$1.2M, NT$350K."""
    value = float(value or 0)
    if value >= 1_000_000:
        return f"NT${value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"NT${value / 1_000:.0f}K"
    return f"NT${value:.0f}"


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def daily_chart(days: list[dict]) -> SafeString:
    """Stacked bars per day: verified paid revenue, held, pending, refunded."""
    width, height = 560, 260
    peak = max((sum(d[key] for key, _c in DAILY_SERIES) for d in days), default=0)
    ceiling = _nice_ceiling(peak)
    # The y labels sit left of the plot: leave room for the longest one
    # ("NT$637.5M" at the axis' 16-unit font is ~9.5 units a character).
    longest = max(len(short_ntd(ceiling * f)) for f in (0, 0.5, 1))
    left, right, top, bottom = max(56, round(longest * 9.5) + 12), 8, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(len(days), 1)
    bar_w = slot * 0.62

    grid = []
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        grid.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>',
                left,
                width - right,
                f"{y:.1f}",
                f"{y:.1f}",
                left - 6,
                f"{y + 4:.1f}",
                short_ntd(ceiling * fraction),
            )
        )
    # About a dozen day labels fit under the plot; longer charts label every n-th bar.
    label_every = max(1, -(-len(days) // 12))
    bars = []
    for index, day in enumerate(days):
        x = left + slot * index + (slot - bar_w) / 2
        base = top + plot_h
        pieces = []
        for key, css in DAILY_SERIES:
            value = float(day[key] or 0)
            if value <= 0:
                continue
            h = plot_h * value / ceiling
            base -= h
            pieces.append(
                format_html(
                    '<rect class="{}" x="{}" y="{}" width="{}" height="{}"/>',
                    css,
                    f"{x:.1f}",
                    f"{base:.1f}",
                    f"{bar_w:.1f}",
                    f"{max(h, 0.5):.1f}",
                )
            )
        tooltip = _(
            "%(day)s 已驗證 %(paid)s · 保留 %(held)s · 待付款 %(pending)s · 退款 %(refunded)s"
        ) % {
            "day": day["label"],
            "paid": ntd(day["paid_amount"]),
            "held": ntd(day["held_amount"]),
            "pending": ntd(day["pending_amount"]),
            "refunded": ntd(day["refunded_amount"]),
        }
        bars.append(
            format_html(
                '<g data-day="{}"><title>{}</title>{}'
                '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text></g>',
                day["key"],
                tooltip,
                SafeString("".join(pieces)),
                f"{x + bar_w / 2:.1f}",
                height - 8,
                day["label"] if index % label_every == 0 else "",
            )
        )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'data-testid="daily-chart" xmlns="http://www.w3.org/2000/svg">{}{}</svg>',
        width,
        height,
        _("每日已驗證營收、保留、待付款與退款金額"),
        SafeString("".join(grid)),
        SafeString("".join(bars)),
    )


def share_bar(value, peak) -> SafeString:
    """A one-row bar for a table cell (revenue per source_event)."""
    fraction = (float(value or 0) / float(peak)) if peak else 0.0
    return format_html(
        '<svg class="sharebar" viewBox="0 0 100 10" preserveAspectRatio="none" '
        'aria-hidden="true" xmlns="http://www.w3.org/2000/svg">'
        '<rect class="track" x="0" y="0" width="100" height="10"/>'
        '<rect class="bar-paid" x="0" y="0" width="{}" height="10"/></svg>',
        f"{100 * fraction:.1f}",
    )


def legend() -> SafeString:
    items = (
        ("bar-paid", _("已驗證營收")),
        ("bar-held", _("保留待決")),
        ("bar-pending", _("待付款")),
        ("bar-refunded", _("已退款")),
    )
    return format_html(
        '<ul class="legend">{}</ul>',
        format_html_join(
            "",
            '<li><svg viewBox="0 0 10 10" aria-hidden="true"><rect class="{}" width="10" height="10"/></svg>{}</li>',
            items,
        ),
    )


def hour_chart(hours: list[int]) -> SafeString:
    """Orders per hour (0–23, Asia/Taipei) of the stream day: 24 bars, the
    count above each non-empty bar, every third hour labelled so the axis
    stays readable on a phone."""
    width, height = 560, 220
    left, right, top, bottom = 8, 8, 22, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(hours, default=0) or 1
    slot = plot_w / 24
    bar_w = slot * 0.7
    pieces = [
        format_html(
            '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>',
            left,
            width - right,
            top + plot_h,
            top + plot_h,
        )
    ]
    for hour, n in enumerate(hours):
        x = left + slot * hour + (slot - bar_w) / 2
        h = plot_h * n / peak
        label = (
            format_html(
                '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>',
                f"{x + bar_w / 2:.1f}",
                height - 10,
                f"{hour:02d}",
            )
            if hour % 3 == 0
            else ""
        )
        value = (
            format_html(
                '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>',
                f"{x + bar_w / 2:.1f}",
                f"{top + plot_h - h - 4:.1f}",
                n,
            )
            if n
            else ""
        )
        pieces.append(
            format_html(
                '<g data-hour="{}" data-orders="{}"><title>{}</title>'
                '<rect class="bar-paid" x="{}" y="{}" width="{}" height="{}"/>{}{}</g>',
                hour,
                n,
                _("%(hour)02d:00–%(hour)02d:59 %(n)s 筆訂單") % {"hour": hour, "n": n},
                f"{x:.1f}",
                f"{top + plot_h - h:.1f}",
                f"{bar_w:.1f}",
                f"{max(h, 0.5 if n else 0):.1f}",
                value,
                label,
            )
        )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'data-testid="hour-chart" xmlns="http://www.w3.org/2000/svg">{}</svg>',
        width,
        height,
        _("直播當天每小時的訂單數"),
        SafeString("".join(pieces)),
    )
