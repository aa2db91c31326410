"""Limits every piece of text, date and id from outside obeys, whatever
door it comes through (API schema, form, query string, file cell).

* No NUL: no PostgreSQL text column takes one (SQLite would store it).
* Text no longer than the model column it lands in (SQLite would store a
  100,000-character dataset name; PostgreSQL answers an error).
* Dates and times between 1970 and 2100: the period is 2026, and years like
  0001 or 9999 overflow time-zone arithmetic.
"""

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from django.utils.translation import gettext as _
from pydantic import AfterValidator, StringConstraints

from reconciliation.errors import InvalidInput

YEAR_RANGE = (1970, 2100)
NUL = "\x00"
# For TextField columns (no max_length of their own): notes a person types.
NOTE_MAX_LENGTH = 5000


def nul_message() -> str:
    return _("不可包含 NUL 控制字元（\\0）。")


def date_range_message() -> str:
    return _("日期須在 %(start)s 到 %(end)s 年之間。") % {
        "start": YEAR_RANGE[0],
        "end": YEAR_RANGE[1],
    }


def in_year_range(value: date | datetime) -> bool:
    return YEAR_RANGE[0] <= value.year <= YEAR_RANGE[1]


def max_length(model, field_name: str) -> int:
    """The column's max_length (NOTE_MAX_LENGTH for a TextField)."""
    return model._meta.get_field(field_name).max_length or NOTE_MAX_LENGTH


def check_date(value, field: str):
    """`value` unchanged, or InvalidInput (422) outside YEAR_RANGE."""
    if value is not None and not in_year_range(value):
        raise InvalidInput("invalid_input", {"field": field, "message": date_range_message()})
    return value


def check_text(value, field: str, limit: int):
    """`value` unchanged, or InvalidInput (422) for a NUL or beyond `limit`."""
    if value is None:
        return value
    if NUL in value:
        raise InvalidInput("invalid_input", {"field": field, "message": nul_message()})
    if len(value) > limit:
        raise InvalidInput(
            "invalid_input",
            {"field": field, "message": _("最多 %(limit)s 個字。") % {"limit": limit}},
        )
    return value


def parse_uuid(value) -> UUID | None:
    """A UUID from text, None when it is not one (the caller answers 404)."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


# --- Pydantic (API schema) types ---------------------------------------------------


def _no_nul(value: str) -> str:
    if NUL in value:
        raise ValueError(nul_message())
    return value


def _date_in_range(value):
    if value is not None and not in_year_range(value):
        raise ValueError(date_range_message())
    return value


def Text(limit: int):  # noqa: N802 - reads as a type in schemas
    """str with a NUL refused and at most `limit` characters."""
    return Annotated[str, StringConstraints(max_length=limit), AfterValidator(_no_nul)]


def ModelText(model, field_name: str):  # noqa: N802
    """str limited like `model.field_name` in the database."""
    return Text(max_length(model, field_name))


Date = Annotated[date, AfterValidator(_date_in_range)]
DateTime = Annotated[datetime, AfterValidator(_date_in_range)]
