"""Formatting for the scorecard: money as integer NT$, rates as
percentages, and the per-row share bar."""

from django import template

from reconciliation.views import charts

register = template.Library()


@register.filter
def ntd(value) -> str:
    return charts.ntd(value)


@register.filter
def percent(value) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.1f}%"


@register.filter
def count(value) -> str:
    return f"{int(value or 0):,}"


@register.simple_tag
def sharebar(value, peak):
    return charts.share_bar(value, peak)
