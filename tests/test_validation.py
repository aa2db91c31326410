"""validation.py: every error code with its row and column, all collected in
one pass, header matching, values parsed the way exports write them."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from reconciliation import schema
from reconciliation.error_codes import ERRORS, WARNINGS, describe
from reconciliation.readers import STRING, RawTable
from reconciliation.validation import validate_file, validate_table
from tests import upload_samples as samples

PERIOD = (date(2026, 5, 12), date(2026, 5, 21))


def check(tmp_path, rows, headers=None, *, columns=None, xlsx=False, period=PERIOD, **kwargs):
    data = (
        samples.xlsx_bytes(rows, headers, columns=columns, **kwargs)
        if xlsx
        else samples.csv_bytes(rows, headers, columns=columns, **kwargs)
    )
    path = tmp_path / ("in.xlsx" if xlsx else "in.csv")
    path.write_bytes(data)
    return validate_file(path, period=period)


def errors(result):
    return [(e["row"], e["column"], e["code"]) for e in result.row_error_dicts()]


def test_a_good_file_is_accepted_with_the_contract_frame(tmp_path):
    result = check(tmp_path, samples.good_rows(4))
    assert result.accepted and result.schema_status == "accepted"
    assert result.row_count == 4 and result.row_error_count == 0
    frame = result.frame
    assert list(frame.columns)[:3] == ["row_number", "order_id", "created_at"]
    assert frame["row_number"].tolist() == [2, 3, 4, 5]
    assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]"
    assert frame["amount"].tolist() == [28000.0] * 4


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("order_id", "", "blank_order_id"),
        ("order_id", "   \t", "blank_order_id"),
        ("customer_key", "", "blank_value"),
        ("program_id", "", "blank_value"),
        ("payment_ref", "", "blank_value"),
        ("source_event", "", "blank_value"),
        ("created_at", "", "blank_value"),
        ("created_at", "2026-02-30 10:00", "bad_date"),
        ("created_at", "2026-05-12 25:00", "bad_date"),
        ("created_at", "12/05/2026", "bad_date"),
        ("created_at", "昨天晚上", "bad_date"),
        ("created_at", "1899-01-01 00:00", "bad_date"),
        ("created_at", "0001/1/1 下午 1:00", "bad_date"),
        ("created_at", "9999-12-31 00:00", "bad_date"),
        ("created_at", "2026-05-12 10:00 UTC", "bad_date"),
        ("amount", "abc", "bad_amount"),
        ("amount", "二萬八", "bad_amount"),
        ("amount", "inf", "bad_amount"),
        ("amount", "-28000", "negative_amount"),
        ("amount", "(100)", "negative_amount"),
        ("payment_status", "shipped", "unknown_payment_status"),
        ("payment_status", "退貨中", "unknown_payment_status"),
        ("payment_ref", "4111 1111 1111 1111", "card_number"),
        ("owner_note", "客人卡號 5555-5555-5555-4444 請退", "card_number"),
        ("payment_ref", "tok_1N3T00LkdIwHu7ixt44h1F8k", "payment_token"),
        ("discount_code", "pm_1Q0PsIJvEtkwdCNYMSaVuRz6", "payment_token"),
        ("order_id", "x" * 101, "too_long"),
    ],
)
def test_each_row_error_code_with_its_row_and_column(tmp_path, column, value, code):
    rows = samples.good_rows(3)
    rows[1][column] = value
    result = check(tmp_path, rows)
    assert result.schema_status == "schema_failed"
    assert errors(result) == [(3, column, code)]
    entry = result.row_error_dicts()[0]
    assert entry["message"] and entry["hint"]
    assert code in ERRORS


def test_every_error_in_one_pass(tmp_path):
    """A missing column does not stop the row checks; a row with three
    problems has three errors; rows are in order."""
    rows = samples.good_rows(5)
    rows[0].update(amount="-1", payment_status="??", created_at="nope")
    rows[3]["order_id"] = ""
    columns = [c for c in samples.HEADERS if c != "discount_code"]
    result = check(tmp_path, rows, columns=columns)
    assert result.missing_fields == ["discount_code"]
    assert errors(result) == [
        (2, "created_at", "bad_date"),
        (2, "amount", "negative_amount"),
        (2, "payment_status", "unknown_payment_status"),
        (5, "order_id", "blank_order_id"),
    ]
    assert result.frame is None  # nothing to import from a file missing a column


def test_ragged_row_is_a_row_error(tmp_path):
    text = samples.csv_text(samples.good_rows(3))
    lines = text.split("\r\n")
    lines[2] = lines[2].rsplit(",", 3)[0]  # three fields short
    (tmp_path / "r.csv").write_text("\r\n".join(lines))
    result = validate_file(tmp_path / "r.csv")
    assert errors(result) == [(3, "", "wrong_field_count")]
    assert "7 個欄位" in result.row_error_dicts()[0]["message"]


def test_missing_and_duplicate_columns_are_file_errors(tmp_path):
    headers = list(samples.HEADERS)
    headers[6] = "金額"  # payment_ref column titled as a second amount
    result = check(tmp_path, samples.good_rows(2), headers)
    codes = [(e["code"], e.get("column")) for e in result.file_errors]
    assert ("missing_column", "payment_ref") in codes
    assert ("duplicate_column", "amount") in codes
    message = next(e for e in result.file_errors if e["code"] == "duplicate_column")["message"]
    assert "amount" in message and "金額" in message


@pytest.mark.parametrize(
    "headers",
    [
        samples.ZH_HEADERS,
        [h.upper() for h in samples.HEADERS],
        [h.replace("_", " ").title() for h in samples.HEADERS],
        [
            "  order_id ",
            "Created At",
            "customer-key",
            "PROGRAM ID",
            "Amount",
            "Payment Status",
            "payment_ref",
            "優惠代碼",
            "來源",
            "說明",
        ],
        [
            "ＯＲＤＥＲ＿ＩＤ",
            "訂單日期",
            "客戶代碼",
            "課程代碼",
            "金額",
            "付款狀態",
            "付款單號",
            "折扣碼",
            "直播場次/來源",
            "備註",
        ],
    ],
)
def test_header_matching_is_case_space_underscore_width_insensitive(tmp_path, headers):
    result = check(tmp_path, samples.good_rows(2), headers)
    assert result.missing_fields == []
    assert result.accepted, result.file_errors


def test_extra_columns_are_ignored_and_listed(tmp_path):
    rows = samples.good_rows(2)
    for row in rows:
        row["物流單號"] = "SF123"
    columns = [*samples.HEADERS, "物流單號"]
    result = check(tmp_path, rows, columns=columns)
    assert result.accepted
    warning = next(w for w in result.warnings if w["code"] == "extra_columns")
    assert "物流單號" in warning["message"]


def test_the_apis_updated_at_is_set_aside_without_a_warning(tmp_path):
    rows = samples.good_rows(2)
    for row in rows:
        row["updated_at"] = "2026-05-20T10:00:00+08:00"
        row["物流單號"] = "SF123"
    result = check(tmp_path, rows, columns=[*samples.HEADERS, "updated_at", "物流單號"])
    assert result.accepted
    warning = next(w for w in result.warnings if w["code"] == "extra_columns")
    assert warning["count"] == 1 and "updated_at" not in warning["message"]


def test_card_in_an_extra_column_is_still_an_error(tmp_path):
    rows = samples.good_rows(2)
    rows[1]["備用"] = "4111111111111111"
    result = check(tmp_path, rows, columns=[*samples.HEADERS, "備用"])
    assert errors(result) == [(3, "備用", "card_number")]
    assert result.row_error_dicts()[0]["value"] == "4111 **** **** 1111"


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-05-12 20:15", "2026-05-12T12:15:00+00:00"),
        ("2026-05-12 20:15:30", "2026-05-12T12:15:30+00:00"),
        ("2026-05-12T20:15:00", "2026-05-12T12:15:00+00:00"),
        ("2026/05/12 20:15", "2026-05-12T12:15:00+00:00"),
        ("2026/5/2 8:05", "2026-05-02T00:05:00+00:00"),
        ("2026-05-12", "2026-05-11T16:00:00+00:00"),
        ("2026-05-12T12:15:00Z", "2026-05-12T12:15:00+00:00"),
        ("2026-05-12 20:15:00+08:00", "2026-05-12T12:15:00+00:00"),
        ("2026/5/12 下午 08:15:00", "2026-05-12T12:15:00+00:00"),
        ("2026/5/12 上午 12:05:00", "2026-05-11T16:05:00+00:00"),
        ("2026-05-12 8:15 PM", "2026-05-12T12:15:00+00:00"),
        ("46154.84375", "2026-05-12T12:15:00+00:00"),
    ],
)
def test_created_at_forms_naive_means_taipei(tmp_path, text, utc):
    rows = samples.good_rows(1, start=1)
    rows[0]["created_at"] = text
    result = check(tmp_path, rows)
    assert result.accepted, result.row_error_dicts()
    assert result.frame["created_at"][0].isoformat() == utc


def test_excel_date_cells(tmp_path):
    result = check(tmp_path, samples.good_rows(3), xlsx=True)
    assert result.accepted
    assert result.frame["created_at"][0].isoformat() == "2026-05-13T12:01:00+00:00"


def test_outside_the_period_is_a_warning_not_an_error(tmp_path):
    rows = samples.good_rows(3)
    rows[0]["created_at"] = "2026-05-11 23:59"
    rows[2]["created_at"] = "2026-05-22 00:00"
    result = check(tmp_path, rows)
    assert result.accepted
    warning = next(w for w in result.warnings if w["code"] == "outside_period")
    assert warning["count"] == 2 and warning["rows"] == [2, 4]
    assert "2026-05-12 到 2026-05-21" in warning["message"]
    # Taipei midnight is the edge: 05-21 23:59 is inside.
    rows[2]["created_at"] = "2026-05-21 23:59"
    assert (
        next(w for w in check(tmp_path, rows).warnings if w["code"] == "outside_period")["count"]
        == 1
    )


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("28000", 28000.0),
        ("28,000", 28000.0),
        ("NT$28,000", 28000.0),
        ("990.555", 990.56),
        ("1e3", 1000.0),
        (" 12 元", 12.0),
        ("0", 0.0),
    ],
)
def test_amounts(tmp_path, text, amount):
    rows = samples.good_rows(1)
    rows[0]["amount"] = text
    result = check(tmp_path, rows)
    assert result.accepted, result.row_error_dicts()
    assert result.frame["amount"][0] == amount


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("paid", "paid"),
        ("PAID", "paid"),
        ("Paid", "paid"),
        ("已付款", "paid"),
        ("待付款", "pending"),
        ("Pending", "pending"),
        ("已退款", "refunded"),
        ("REFUNDED", "refunded"),
        ("退刷", "refunded"),
        ("  paid ", "paid"),
    ],
)
def test_payment_status_synonyms(tmp_path, text, status):
    rows = samples.good_rows(1)
    rows[0]["payment_status"] = text
    result = check(tmp_path, rows)
    assert result.accepted
    assert result.frame["payment_status"][0] == status


def test_duplicate_order_ids_are_reported_not_errors(tmp_path):
    rows = samples.good_rows(4)
    rows[2]["order_id"] = rows[0]["order_id"]
    result = check(tmp_path, rows)
    assert result.accepted
    warning = next(w for w in result.warnings if w["code"] == "duplicate_order_id")
    assert warning["count"] == 2 and warning["rows"] == [2, 4]


def test_raw_customer_keys_are_hashed_with_a_warning(tmp_path):
    rows = samples.good_rows(3)
    rows[0]["customer_key"] = "wade@example.com"
    rows[1]["customer_key"] = rows[1]["customer_key"].upper()
    result = check(tmp_path, rows)
    assert result.accepted
    warning = next(w for w in result.warnings if w["code"] == "customer_key_hashed")
    assert warning["count"] == 1
    keys = result.frame["customer_key"].tolist()
    assert keys[1] == samples.key(2)  # a digest in capitals is only lower-cased
    assert len(keys[0]) == 64 and "wade" not in keys[0]


def test_blank_rows_dropped_and_header_only(tmp_path):
    rows = samples.good_rows(2)
    blank = dict.fromkeys(samples.HEADERS, "")
    result = check(tmp_path, [rows[0], blank, rows[1], blank])
    assert result.accepted and result.row_count == 2
    assert result.frame["row_number"].tolist() == [2, 4]
    only_header = check(tmp_path, [blank, blank])
    assert [e["code"] for e in only_header.file_errors] == ["header_only"]


def test_no_header_at_all_names_every_missing_column(tmp_path):
    (tmp_path / "x.csv").write_text("hello,world\n1,2\n")
    result = validate_file(tmp_path / "x.csv")
    assert result.missing_fields == list(schema.REQUIRED_COLUMNS)


def test_every_code_and_warning_has_zh_hant_text():
    params = dict.fromkeys(
        ["value", "count", "headers", "kind", "size_mb", "limit_mb", "rows", "limit", "detail"],
        "1",
    )
    params.update(column="amount", reason="damaged", actual="7", expected="10")
    for code in ERRORS:
        message, hint = describe(code, params)
        assert message and hint
        assert "%(" not in message and "%(" not in hint
    assert set(WARNINGS) == {
        "customer_key_hashed",
        "duplicate_order_id",
        "outside_period",
        "extra_columns",
    }


def raw_table(cells: list[list[str]], headers: list[str]) -> RawTable:
    width = len(headers)
    frame = pd.DataFrame(
        {
            i: pd.array([row[i] if i < len(row) else "" for row in cells], dtype=STRING)
            for i in range(width)
        }
    )
    return RawTable(
        kind="csv",
        headers=headers,
        frame=frame,
        row_numbers=np.arange(2, 2 + len(cells), dtype=np.int64),
        header_row=1,
    )


header_choices = st.lists(
    st.one_of(st.sampled_from(list(schema.COLUMN_NAMES) + samples.ZH_HEADERS), st.text(max_size=8)),
    min_size=1,
    max_size=12,
)
cell_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "paid",
            "已退款",
            "28,000",
            "-1",
            "2026-05-12 20:15",
            "4111 1111 1111 1111",
            "tok_1N3T00LkdIwHu7ixt44h1F8k",
            "46154.5",
            "=cmd|' /C calc'!A0",
            "0001/1/1 下午 1:00",
            "2026-05-12T10:00+0800",
            "2026-02-30 10:00",
        ]
    ),
)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=header_choices,
    cells=st.lists(st.lists(cell_text, max_size=12), max_size=15),
)
def test_arbitrary_frames_never_raise(headers, cells):
    result = validate_table(raw_table(cells, headers), period=PERIOD)
    assert result.schema_status in ("accepted", "schema_failed")
    listed = result.row_error_dicts()
    assert len(listed) == result.row_error_count
    for entry in listed:
        assert "4111 1111 1111 1111" not in entry["message"] + entry["value"]
        assert "tok_1N3T00LkdIwHu7ixt44h1F8k" not in entry["message"] + entry["value"]
    if result.accepted:
        assert result.frame["payment_status"].isin(["paid", "pending", "refunded"]).all()
        assert (result.frame["amount"] >= 0).all()
