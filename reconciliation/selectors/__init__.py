"""Reads, one module per page or API area. Query counts are asserted in tests."""

from reconciliation.selectors.requests import (  # noqa: F401
    board_requests,
    request_detail,
    request_list_for_api,
)
