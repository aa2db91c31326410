"""What a sync keeps is NDJSON: read like a CSV, with the same validator."""

import json

from reconciliation.validation import validate_file

RECORD = {
    "order_id": "A-1",
    "created_at": "2026-05-12T12:00:00Z",
    "updated_at": "2026-05-13T00:00:00Z",
    "customer_key": "ab" * 32,
    "program_id": "TRAIN-28000",
    "amount": 28000,
    "payment_status": "paid",
    "payment_ref": "PAY-1",
    "discount_code": None,
    "source_event": "live-0512",
    "owner_note": "",
}


def _write(tmp_path, lines):
    path = tmp_path / "page.ndjson"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_records_become_rows_numbers_their_text_and_null_blank(tmp_path):
    second = {**RECORD, "order_id": "A-2", "amount": 1990.5, "payment_status": "pending"}
    result = validate_file(_write(tmp_path, [json.dumps(RECORD), json.dumps(second)]))
    assert result.accepted, (result.file_errors, result.row_error_totals)
    assert result.kind == "ndjson"
    frame = result.frame
    assert frame["order_id"].tolist() == ["A-1", "A-2"]
    assert frame["amount"].tolist() == [28000.0, 1990.5]
    assert frame["discount_code"].tolist() == ["", ""]
    # An ISO 8601 time with its zone stays that instant (not read as Taipei).
    assert str(frame["created_at"].iloc[0]) == "2026-05-12 12:00:00+00:00"
    # The API's own updated_at is no "extra column" for Wade to wonder about.
    assert result.warnings == []


def test_row_errors_name_the_record_line(tmp_path):
    bad = {**RECORD, "order_id": "A-2", "amount": -5}
    nul = {**RECORD, "order_id": "A-3", "owner_note": "x\u0000y"}
    result = validate_file(_write(tmp_path, [json.dumps(RECORD), json.dumps(bad), json.dumps(nul)]))
    assert not result.accepted
    errors = {(e["row"], e["code"]) for e in result.row_error_dicts()}
    assert errors == {(2, "negative_amount"), (3, "nul_character")}


def test_broken_json_or_a_missing_field_is_a_file_error(tmp_path):
    broken = validate_file(_write(tmp_path, [json.dumps(RECORD), '{"order_id": "A-2",']))
    assert [e["code"] for e in broken.file_errors] == ["unreadable_file"]
    partial = {k: v for k, v in RECORD.items() if k != "payment_ref"}
    missing = validate_file(_write(tmp_path, [json.dumps(partial)]))
    assert missing.missing_fields == ["payment_ref"]


def test_a_page_with_an_integer_wider_than_64_bits_is_kept_and_judged_by_the_validator(tmp_path):
    from reconciliation.connectors.kolable_api import _parse_page
    from reconciliation.services.sync import _highest, _ndjson

    huge = {**RECORD, "order_id": "A-2", "amount": 2**70}
    body = json.dumps({"data": [RECORD, huge], "next_cursor": None}).encode()
    page = _parse_page(body)
    assert page.records[1]["amount"] == 2**70
    path = tmp_path / "page.ndjson"
    path.write_bytes(_ndjson(page.records))
    kept = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert kept == [RECORD, huge]
    assert str(_highest([r["updated_at"] for r in kept])) == "2026-05-13 00:00:00+00:00"
    result = validate_file(path)
    assert result.row_error_totals == {"amount_too_large": 1}


def test_the_latest_updated_at_ignores_unreadable_values_and_compares_instants():
    from reconciliation.services.sync import _highest

    assert _highest([]) is None
    assert _highest(["not a time", None]) is None
    stamps = ["2026-05-13T00:00:00Z", "2026-05-13T09:00:00.5+08:00", "2026-05-13T00:00:00.25Z"]
    assert str(_highest(stamps)) == "2026-05-13 01:00:00.500000+00:00"
