"""readers.py: the type from the bytes, every encoding and layout the
exports come in, and the file-level refusals."""

import json

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from reconciliation.readers import FileProblem, read_upload, sniff_kind
from reconciliation.validation import validate_file
from tests import upload_samples as samples


def write(tmp_path, data: bytes, name="upload.bin"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read(tmp_path, data: bytes, **kwargs):
    return read_upload(write(tmp_path, data), **kwargs)


def problem(tmp_path, data: bytes, **kwargs) -> FileProblem:
    with pytest.raises(FileProblem) as caught:
        read(tmp_path, data, **kwargs)
    return caught.value


def values(table, column: int) -> list[str]:
    return table.frame[column].tolist()


ROWS = samples.good_rows(3)
ROWS[0]["owner_note"] = "客服改單，已開發票"


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [("utf-8", False, "utf-8"), ("utf-8", True, "utf-8-sig"), ("cp950", False, "cp950")],
)
def test_csv_encodings(tmp_path, encoding, bom, expected):
    data = samples.csv_bytes(ROWS, samples.ZH_HEADERS, encoding=encoding, bom=bom)
    table = read(tmp_path, data)
    assert table.kind == "csv"
    assert table.encoding == expected
    assert table.headers == samples.ZH_HEADERS
    assert values(table, 9)[0] == "客服改單，已開發票"
    assert table.row_numbers.tolist() == [2, 3, 4]


def test_big5_detected_even_when_the_first_bytes_are_ascii(tmp_path):
    """The header is plain ASCII; only row 3000 has Chinese: the whole file
    is re-read as CP950."""
    rows = samples.good_rows(3000)
    rows[-1]["owner_note"] = "退刷"
    table = read(tmp_path, samples.csv_bytes(rows, encoding="cp950"))
    assert table.encoding == "cp950"
    assert values(table, 9)[-1] == "退刷"


def test_utf16_unicode_text_from_excel(tmp_path):
    data = samples.csv_bytes(ROWS, encoding="utf-16-le", bom=True, delimiter="\t")
    table = read(tmp_path, data)
    assert table.delimiter == "\t"
    assert values(table, 9)[0] == "客服改單，已開發票"


def test_undecodable_bytes_are_unreadable(tmp_path):
    data = samples.csv_bytes(ROWS) + b"\x80\xff\xfe\x81 broken\r\n"
    assert problem(tmp_path, data).params == {"reason": "encoding"}


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters_are_sniffed(tmp_path, delimiter):
    rows = samples.good_rows(2)
    rows[0]["owner_note"] = "a,b;c"  # quoted by the writer, not a delimiter
    table = read(tmp_path, samples.csv_bytes(rows, delimiter=delimiter))
    assert table.delimiter == delimiter
    assert len(table.headers) == 10
    assert values(table, 9)[0] == "a,b;c"


def test_title_rows_above_the_csv_header(tmp_path):
    data = samples.csv_bytes(ROWS, title_rows=("Kolable 訂單匯出", "期間 2026-05-12 ~ 05-21", ""))
    table = read(tmp_path, data)
    assert table.header_row == 4
    assert table.row_numbers.tolist() == [5, 6, 7]
    assert values(table, 0)[0] == ROWS[0]["order_id"]


def test_tiktok_tab_after_long_ids_stays_in_its_column(tmp_path):
    rows = samples.good_rows(2)
    rows[0]["order_id"] = "576461234567891234\t"
    table = read(tmp_path, samples.csv_bytes(rows))
    assert table.delimiter == ","
    assert values(table, 0)[0] == "576461234567891234\t"  # validation strips it


def test_quoted_newline_counts_as_one_excel_row(tmp_path):
    rows = samples.good_rows(3)
    rows[0]["owner_note"] = "第一行\n第二行"
    table = read(tmp_path, samples.csv_bytes(rows))
    assert table.row_numbers.tolist() == [2, 3, 4]
    assert values(table, 9)[0] == "第一行\n第二行"


def test_ragged_rows_are_set_aside_with_their_row_number(tmp_path):
    text = samples.csv_text(samples.good_rows(3))
    lines = text.split("\r\n")
    lines[2] = lines[2] + ",extra,fields"
    table = read(tmp_path, "\r\n".join(lines).encode())
    assert table.ragged_rows == [(3, 12)]
    assert table.row_numbers.tolist() == [2, 4]


def test_blank_lines_keep_excel_numbering(tmp_path):
    # header, blank, row, blank, row: Excel shows the rows as 3 and 5.
    text = samples.csv_text(samples.good_rows(2)).replace("\r\n", "\r\n\r\n", 2)
    table = read(tmp_path, text.encode())
    numbers = [
        n for n, v in zip(table.row_numbers.tolist(), values(table, 0), strict=True) if v.strip()
    ]
    assert numbers == [3, 5]


def test_xlsx_header_below_title_rows_on_the_second_sheet(tmp_path):
    data = samples.xlsx_bytes(
        ROWS,
        samples.ZH_HEADERS,
        title_rows=(("Kolable 訂單付款匯出",), ("期間", "2026-05-12 ~ 2026-05-21")),
        cover_sheet=True,
    )
    table = read(tmp_path, data)
    assert table.kind == "xlsx"
    assert table.sheet == "orders"
    assert table.header_row == 3
    assert table.row_numbers.tolist() == [4, 5, 6]
    # Typed cells come back as text a person would type.
    assert values(table, 1)[0] == "2026-05-13 20:01:00"
    assert values(table, 4)[0] == "28000"


def test_xlsx_number_and_date_cells_become_text(tmp_path):
    rows = samples.good_rows(2)
    rows[0]["amount"] = "990.5"
    rows[1]["order_id"] = 123456789012  # a numeric id cell
    table = read(tmp_path, samples.xlsx_bytes(rows))
    assert values(table, 4) == ["990.5", "28000"]
    assert values(table, 0)[1] == "123456789012"


def test_xlsx_excel_serial_date_stays_a_number_for_the_validator(tmp_path):
    rows = samples.good_rows(1)
    rows[0]["created_at"] = 46154.84375  # 2026-05-12 20:15 as an unformatted serial
    table = read(tmp_path, samples.xlsx_bytes(rows))
    assert values(table, 1) == ["46154.84375"]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (samples.PDF, "PDF"),
        (samples.PNG, "PNG"),
        (b"\x1f\x8b\x08\x00" + b"\0" * 20, "gzip"),
        (b"GIF89a" + b"\0" * 10, "GIF"),
        (samples.zip_bytes({"word/document.xml": b"<w/>"}), "ZIP"),
        (b"order_id,amount\n\x00\x01\x02binary\n", "binary"),
    ],
)
def test_binary_types_are_unsupported(tmp_path, data, kind):
    found = problem(
        tmp_path,
        data,
    )
    assert found.code == "unsupported_type"
    assert found.params["kind"] == kind


def test_type_comes_from_bytes_not_the_name(tmp_path):
    xlsx = samples.xlsx_bytes(ROWS)
    assert read_upload(write(tmp_path, xlsx, "orders.csv")).kind == "xlsx"
    csv_data = samples.csv_bytes(ROWS)
    assert read_upload(write(tmp_path, csv_data, "orders.xlsx")).kind == "csv"
    assert sniff_kind(samples.PDF) == "PDF"
    assert sniff_kind(samples.encrypted_xlsx()) == "ole"


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"  \r\n\t\r\n"])
def test_empty_files(tmp_path, data):
    assert problem(tmp_path, data).code == "empty_file"


def test_ods_that_reads_cleanly_is_taken(tmp_path):
    table = read(tmp_path, samples.ods_bytes(ROWS))
    assert table.kind == "ods"
    assert values(table, 0) == [r["order_id"] for r in ROWS]
    assert values(table, 4) == ["28000"] * 3
    assert validate_file(write(tmp_path, samples.ods_bytes(ROWS), "x.ods")).accepted


def test_ods_that_does_not_read_is_unreadable(tmp_path):
    data = samples.zip_bytes(
        {"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b"<x"}
    )
    assert problem(tmp_path, data).code in ("unreadable_file", "empty_file")


def test_encrypted_and_unreadable_legacy_excel(tmp_path):
    assert problem(tmp_path, samples.encrypted_xlsx()).code == "encrypted_xlsx"
    assert problem(tmp_path, samples.legacy_garbage_xls()).code == "encrypted_xlsx"


def test_truncated_xlsx(tmp_path):
    data = samples.xlsx_bytes(samples.good_rows(30))
    found = problem(tmp_path, data[: len(data) - 200])
    assert found.code == "unreadable_file"


def test_zip_bomb_by_ratio(tmp_path):
    found = problem(tmp_path, samples.zip_bomb_xlsx(inflated_mb=8))
    assert found.code == "zip_bomb"
    assert found.params["detail"].startswith("1:")


def test_zip_bomb_by_total_size(tmp_path, settings):
    settings.MAX_XLSX_UNCOMPRESSED_MB = 1
    rows = samples.good_rows(3000)
    found = problem(tmp_path, samples.xlsx_bytes(rows))
    assert found.code == "zip_bomb"


def test_too_many_rows(tmp_path):
    assert problem(tmp_path, samples.csv_bytes(samples.good_rows(4)), max_rows=3).code == (
        "too_many_rows"
    )
    assert read(tmp_path, samples.csv_bytes(samples.good_rows(3)), max_rows=3).frame.shape[0] == 3


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.binary(max_size=2048),
        st.text(max_size=600).map(lambda t: t.encode("utf-8")),
        st.lists(
            st.lists(st.text(max_size=12), min_size=1, max_size=12), min_size=1, max_size=8
        ).map(lambda rows: "\n".join(",".join(r) for r in rows).encode("utf-8")),
        st.binary(max_size=512).map(lambda b: b"PK\x03\x04" + b),
        st.binary(max_size=512).map(lambda b: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b),
    )
)
def test_arbitrary_bytes_raise_only_file_problems(tmp_path, data):
    path = write(tmp_path, data, "fuzz.bin")
    try:
        read_upload(path)
    except FileProblem:
        pass
    result = validate_file(path)  # never raises
    assert result.schema_status in ("accepted", "schema_failed")


def test_sample_exports_are_valid_files(tmp_path, settings):
    """make_sample_export's files (used by every benchmark) pass the schema."""
    call_command(
        "make_sample_export",
        "--out",
        str(tmp_path),
        "--xlsx-rows",
        "300",
        "--csv-rows",
        "400",
        stdout=open(tmp_path / "out.txt", "w"),  # noqa: SIM115
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"orders-300.xlsx", "orders-400.csv"}
    for entry in manifest["files"].values():
        result = validate_file(entry["path"])
        assert result.schema_status == "accepted", result.row_error_dicts(5)
    xlsx = validate_file(tmp_path / "orders-300.xlsx")
    assert xlsx.header_row == 3 and xlsx.row_count == 300
    assert {w["code"] for w in xlsx.warnings} >= {"duplicate_order_id"}


def _longest_text_run(chunks: list[bytes]) -> int:
    """The rule by hand: text runs from a '>' to the next '<'; what lies
    between a '<' and the first '>' after it is a tag."""
    data, longest, run, in_tag = b"".join(chunks), 0, 0, False
    for byte in data:
        if in_tag:
            in_tag = byte != ord(">")
        elif byte == ord("<"):
            longest, run, in_tag = max(longest, run), 0, True
        else:
            run += 1
    return max(longest, run)


@pytest.mark.parametrize(
    "chunks",
    [
        [b'<c r="A1"><v>12345</v></c>'],
        [b"<t>ab>cd>ef</t>"],  # '>' inside text is text
        [b"<t>abc", b"defgh", b"ij</t>"],  # a run across chunks
        [b"<a<b>xyz<c>"],  # a '<' inside a tag
        [b"<t attr='", b"x' >long text", b" here</t>"],  # a tag across chunks
        [b"no tags at all"],
    ],
)
def test_the_longest_cell_is_measured_exactly_across_chunks(chunks):
    from reconciliation.sheet_extent import _check_text_runs

    longest = _longest_text_run(chunks)

    def scan(limit):
        carry = 0
        for chunk in chunks:
            carry = _check_text_runs(chunk, carry, limit)

    scan(longest)  # a run of exactly the limit passes
    with pytest.raises(FileProblem) as refused:
        scan(longest - 1)
    assert refused.value.code == "sheet_too_large"
