"""A settlement file's table of strings → file- and row-level errors and the
normalised frame of settlement lines.

The layout (ECPay, Stripe, NewebPay or the canonical names) is recognised
from the header row; every check then runs vectorised over whole columns,
like the order export's (validation.py): Excel's ="…" text cells are
unwrapped, yyyyMMdd dates read as dates, amounts keep their sign (a refund
or chargeback is negative), a blank txn_type comes from the sign and a blank
net_amount is gross − fee.

The accepted frame: row_number int64; payment_ref, ref_key (trimmed,
case-folded payment_ref), provider_txn_id, txn_type, payout_id,
settlement_status, provider str; gross_amount, fee_amount, net_amount
float64 (cents); txn_date, settlement_date datetime64[ns, UTC] (NaT when
blank).
"""

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reconciliation import privacy, schema
from reconciliation.error_codes import file_error
from reconciliation.readers import FileProblem, RawTable, read_upload
from reconciliation.validation import (
    SHOWN_VALUE_CHARS,
    ValidationResult,
    _drop_blank_rows,
    _RowErrors,
    _warning,
    report_row_errors,
)
from reconciliation.values import as_mask, parse_amounts, parse_datetimes, too_large

# Database column sizes the settlement import writes into (SettlementLine).
MAX_LENGTHS = {
    "payment_ref": 200,
    "provider_txn_id": 100,
    "payout_id": 100,
    "provider": 40,
}
TEXT_COLUMNS = ("payment_ref", "provider_txn_id", "payout_id", "provider")
DATE_COLUMNS = ("txn_date", "settlement_date")
AMOUNT_COLUMNS = ("gross_amount", "fee_amount", "net_amount")
EXCEL_TEXT = r'^="(.*)"$'
COMPACT_DATE = r"^(\d{4})(\d{2})(\d{2})((?:\s.*)?)$"


def validate_settlement_file(
    path: Path, *, period: tuple[date, date] | None = None, max_rows: int | None = None
) -> ValidationResult:
    """Read and validate a kept settlement upload. Never raises for anything
    in the file."""
    try:
        raw = read_upload(path, max_rows=max_rows)
    except FileProblem as problem:
        return ValidationResult(file_errors=[file_error(problem.code, **problem.params)])
    return validate_settlement_table(raw)


def validate_settlement_table(raw: RawTable) -> ValidationResult:
    layout = schema.recognise_layout(raw.headers)
    result = ValidationResult(
        kind=raw.kind,
        encoding=raw.encoding,
        delimiter=raw.delimiter,
        sheet=raw.sheet,
        header_row=raw.header_row,
        headers=[privacy.redact(h) for h in raw.headers],
        layout=layout,
    )
    places, extras = _map_headers(raw.headers, layout, result)
    cells = {p: _unwrap(privacy.text_array(raw.frame[p])) for p in raw.frame.columns}
    cells, row_numbers = _drop_blank_rows(cells, raw.row_numbers)
    n = len(row_numbers)
    result.row_count = n
    if n == 0 and not raw.ragged_rows:
        result.file_errors.append(file_error("header_only"))
    if extras:
        result.warnings.append(
            _warning("extra_columns", len(extras), columns="、".join(extras[:20]))
        )
    errors = _RowErrors(row_numbers)
    for row, fields in raw.ragged_rows:
        errors.single(row, "", "wrong_field_count", f"{fields}/{len(raw.headers)}")
    columns = {name: _coalesce([cells[p] for p in where]) for name, where in places.items()}
    checks = []
    harmless: dict[int, np.ndarray] = {}
    for name, values in columns.items():
        if not schema.SETTLEMENT_BY_NAME[name].allow_blank:
            checks.append((as_mask(pc.equal(values, "")), name, "blank_value", None))
        if name in MAX_LENGTHS:
            too_long = as_mask(pc.greater(pc.utf8_length(values), MAX_LENGTHS[name]))
            checks.append((too_long, name, "too_long", str(MAX_LENGTHS[name])))
    normal: dict = {"row_number": row_numbers}
    for name in DATE_COLUMNS:
        values = columns.get(name)
        if values is None:
            normal[name] = pd.Series(pd.array([pd.NaT] * n, dtype="datetime64[ns, UTC]"))
            continue
        stamps, bad = parse_datetimes(_dates(values, utc=layout == "stripe"))
        checks.append((bad, name, "bad_settlement_date", values))
        normal[name] = stamps
        for p in places[name]:
            harmless[p] = stamps.notna().to_numpy()
    for name in AMOUNT_COLUMNS:
        values = columns.get(name)
        if values is None:
            continue
        amounts, bad, _negative = parse_amounts(values)
        checks.append((bad, name, "bad_settlement_amount", values))
        checks.append((too_large(amounts), name, "amount_too_large", values))
        normal[name] = np.nan_to_num(amounts, nan=0.0)
        normal[name + "_blank"] = as_mask(pc.equal(values, ""))
    gross = normal.get("gross_amount", np.zeros(n))
    fee = normal.get("fee_amount", np.zeros(n))
    net = normal.get("net_amount")
    if net is None:
        net = gross - fee
    else:
        net = np.where(normal["net_amount_blank"], gross - fee, net)
    normal["gross_amount"], normal["fee_amount"], normal["net_amount"] = (
        np.round(gross, 2),
        np.round(fee, 2),
        np.round(net, 2),
    )
    kinds, unknown = _txn_types(columns.get("txn_type"), gross, n)
    if "txn_type" in columns:
        checks.append((unknown, "txn_type", "unknown_txn_type", columns["txn_type"]))
    normal["txn_type"] = kinds
    statuses, unknown = _statuses(columns.get("settlement_status"), n)
    if "settlement_status" in columns:
        checks.append(
            (
                unknown,
                "settlement_status",
                "unknown_settlement_status",
                columns["settlement_status"],
            )
        )
    normal["settlement_status"] = statuses
    for name in TEXT_COLUMNS:
        normal[name] = columns.get(name, pa.array([""] * n, pa.string()))
    default_provider = schema.PROVIDER_NAMES[layout]
    if default_provider:
        normal["provider"] = pc.if_else(
            pc.equal(normal["provider"], ""), default_provider, normal["provider"]
        )
    report_row_errors(result, _column_names(raw.headers, places), cells, checks, harmless, errors)
    if not result.missing_fields and not result.file_errors:
        result.frame = _normalised_frame(normal, n)
    return result


def _map_headers(headers, layout: str, result) -> tuple[dict[str, list[int]], list]:
    """{column: [positions in preference order]} in the recognised layout;
    missing required columns are file errors, unknown headers are listed."""
    keys = schema.SETTLEMENT_LAYOUT_KEYS[layout]
    preference = {
        name: [schema.normalize_header(h) for h in headers_]
        for name, headers_ in schema.SETTLEMENT_LAYOUTS[layout].items()
    }
    found: dict[str, list[tuple[int, int]]] = {}
    extras = []
    for position, header in enumerate(headers):
        if not str(header).strip():
            continue
        key = schema.normalize_header(header)
        name = keys.get(key)
        if name is None:
            extras.append(privacy.redact(str(header).strip())[:SHOWN_VALUE_CHARS])
        else:
            found.setdefault(name, []).append((preference[name].index(key), position))
    for name in schema.SETTLEMENT_REQUIRED:
        if name not in found:
            result.missing_fields.append(name)
            result.file_errors.append(file_error("missing_column", name))
    return {name: [p for _rank, p in sorted(places)] for name, places in found.items()}, extras


def _column_names(headers, places: dict[str, list[int]]) -> dict[int, str]:
    by_position = {p: name for name, where in places.items() for p in where}
    return {
        position: by_position.get(position)
        or privacy.redact(str(header).strip())[:SHOWN_VALUE_CHARS]
        or f"#{position + 1}"
        for position, header in enumerate(headers)
    }


def _unwrap(values: pa.Array) -> pa.Array:
    """Trimmed text, with Excel's ="…" text cells unwrapped."""
    values = pc.utf8_trim_whitespace(values)
    if pc.any(pc.starts_with(values, '="')).as_py():
        values = pc.utf8_trim_whitespace(pc.replace_substring_regex(values, EXCEL_TEXT, r"\1"))
    return values


def _coalesce(arrays: list[pa.Array]) -> pa.Array:
    """The first non-blank cell of the headers naming one column."""
    out = arrays[0]
    for other in arrays[1:]:
        out = pc.if_else(pc.equal(out, ""), other, out)
    return out


def _dates(values: pa.Array, *, utc: bool) -> pa.Array:
    """yyyyMMdd (with or without a time) as yyyy-MM-dd; a layout that writes
    UTC times gets the zone added."""
    values = pc.replace_substring_regex(values, COMPACT_DATE, r"\1-\2-\3\4")
    if utc:
        plain = pc.and_(
            pc.not_equal(values, ""),
            pc.invert(pc.match_substring_regex(values, r"(?:Z|[+-]\d{2}:?\d{2})$")),
        )
        values = pc.if_else(plain, pc.binary_join_element_wise(values, "+00:00", ""), values)
    return values


def _lookup(values: pa.Array, synonyms: dict[str, str]) -> pa.Array:
    """Each value's canonical form ('' when unknown), looked up once per
    distinct value."""
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    mapped = pa.array(
        [synonyms.get(schema.normalize_header(v), "") for v in encoded.dictionary.to_pylist()],
        pa.string(),
    )
    return pc.take(mapped, encoded.indices)


def _txn_types(values, gross: np.ndarray, n: int) -> tuple[pa.Array, np.ndarray]:
    from_sign = pa.array(np.where(gross < 0, "refund", "charge"), pa.string())
    if values is None:
        return from_sign, np.zeros(n, dtype=bool)
    blank = pc.equal(values, "")
    mapped = _lookup(values, schema.TXN_TYPE_SYNONYMS)
    unknown = as_mask(pc.equal(mapped, "")) & ~as_mask(blank)
    return pc.if_else(blank, from_sign, mapped), unknown


def _statuses(values, n: int) -> tuple[pa.Array, np.ndarray]:
    if values is None:
        return pa.array(["settled"] * n, pa.string()), np.zeros(n, dtype=bool)
    blank = pc.equal(values, "")
    mapped = _lookup(values, schema.SETTLEMENT_STATUS_SYNONYMS)
    unknown = as_mask(pc.equal(mapped, "")) & ~as_mask(blank)
    return pc.if_else(blank, "settled", mapped), unknown


def reference_keys(values) -> pa.Array:
    """The matching key of a payment_ref: trimmed and case-folded."""
    return pc.utf8_lower(pc.utf8_trim_whitespace(privacy.text_array(values)))


def _normalised_frame(normal: dict, n: int) -> pd.DataFrame:
    def text(name):
        return pd.arrays.ArrowExtensionArray(privacy.text_array(normal[name]))

    return pd.DataFrame(
        {
            "row_number": np.asarray(normal["row_number"], dtype=np.int64),
            "payment_ref": text("payment_ref"),
            "ref_key": pd.arrays.ArrowExtensionArray(reference_keys(normal["payment_ref"])),
            "provider_txn_id": text("provider_txn_id"),
            "txn_type": text("txn_type"),
            "gross_amount": np.asarray(normal["gross_amount"], dtype=np.float64),
            "fee_amount": np.asarray(normal["fee_amount"], dtype=np.float64),
            "net_amount": np.asarray(normal["net_amount"], dtype=np.float64),
            "txn_date": normal["txn_date"].array,
            "settlement_date": normal["settlement_date"].array,
            "payout_id": text("payout_id"),
            "settlement_status": text("settlement_status"),
            "provider": text("provider"),
        }
    )
