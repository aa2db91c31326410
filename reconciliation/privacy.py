"""Privacy guards (the rule: "no raw PII, payment token, card
number"): customer-key hashing, card/token detection and masking, and the
formula-injection guard every CSV/XLSX the app writes goes through.

* A customer_key that is not already a 64-hex digest is replaced by
  HMAC-SHA256(CUSTOMER_KEY_SECRET, key) before it is stored or shown; the
  raw value is kept nowhere but in the original upload's bytes.
* A card number is a run of 13–19 digits (single spaces or dashes allowed
  between digits) that is not glued to other letters or digits, passes
  Luhn, and starts like a real card (issuer prefixes below). The prefix
  rule keeps date-stamped order ids (``KOL-20260512-000123``) and TikTok's
  18-digit order numbers from being taken for cards.
* A payment token is a Stripe-style ``tok_`` / ``pm_`` / ``card_`` / ``src_``
  / ``btok_`` id (charge and payment-intent ids like ``ch_`` / ``pi_`` are
  legitimate payment references and are not flagged).
* Whatever is shown (API answers, reports, pages, logs) shows them masked:
  ``4111 **** **** 1111``, ``tok_****``.
"""

import hashlib
import hmac
import re
import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings

HEX64 = re.compile(r"[0-9a-fA-F]{64}")

# Exact patterns (Python re), used on the few candidate cells only.
CARD_RE = re.compile(r"(?<![0-9A-Za-z])[0-9](?:[ \-]?[0-9]){12,18}(?![0-9A-Za-z])")
TOKEN_RE = re.compile(
    r"(?<![A-Za-z0-9_])(tok|pm|card|src|btok)_(?=[A-Za-z0-9]*[0-9])[A-Za-z0-9]{8,}"
)

# Issuer prefixes and how many digits each fixes: Visa, Mastercard (51–55,
# 2221–2720), Amex, Diners, JCB, Discover, UnionPay, Maestro.
ISSUERS = (
    ("4", 1),
    ("5[1-5]", 2),
    ("2(?:22[1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]|720)", 4),
    ("3[47]", 2),
    ("30[0-5]", 3),
    ("3[689]", 2),
    ("35(?:2[89]|[3-8][0-9])", 4),
    ("6011", 4),
    ("64[4-9]", 3),
    ("6[25]", 2),
    ("50(?:18|20|38)", 4),
    ("5893|6304|6759|676[1-3]", 4),
    ("81", 2),
)
ISSUER_RE = re.compile("(?:" + "|".join(prefix for prefix, _ in ISSUERS) + ")")

# The vectorised prefilter (RE2 through Arrow: no look-arounds, so boundaries
# are explicit): an issuer prefix followed by enough digits for 13–19 in all,
# or a token. It only has to let every real card or token through; the exact
# checks above decide.
PREFILTER = (
    r"(?:^|[^0-9A-Za-z])(?:"
    + "|".join(
        rf"(?:{prefix})(?:[ \-]?[0-9]){{{13 - digits},{19 - digits}}}" for prefix, digits in ISSUERS
    )
    + r")(?:$|[^0-9A-Za-z])"
    + r"|(?:^|[^A-Za-z0-9_])(?:tok|pm|card|src|btok)_[A-Za-z0-9]{8,}"
)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# A plain negative number ("-28000", "-1.5") is data, not a formula: Excel
# reads it as the number, so it gets no apostrophe (a report showing
# '-28000 made Wade think the file had a stray quote). A leading "+" stays
# guarded: "+886912345678" is a phone number Excel would turn into a number.
PLAIN_NUMBER = re.compile(r"-\d+(?:\.\d+)?")


def safe_cell(value):
    """A value as it may go into a CSV/XLSX cell: text that Excel would run
    as a formula (=, +, -, @, tab, CR first) gets a leading apostrophe.
    Numbers, plain negative numbers in text and None pass unchanged."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_PREFIXES)
        and not PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


# --- Customer keys -----------------------------------------------------------


def is_hashed_key(value: str) -> bool:
    return bool(HEX64.fullmatch(value or ""))


def _key_secret() -> bytes:
    return str(settings.CUSTOMER_KEY_SECRET).encode()


def normalise_raw_key(value: str) -> str:
    """The same person typed twice (case, width, spaces) hashes the same."""
    return unicodedata.normalize("NFKC", value).strip().casefold()


def hash_customer_key(value: str) -> str:
    """64 lowercase hex: a digest passes through (lower-cased), anything else
    is HMAC-SHA256-hashed."""
    if is_hashed_key(value):
        return value.lower()
    return hmac.new(_key_secret(), normalise_raw_key(value).encode(), hashlib.sha256).hexdigest()


def hash_customer_keys(keys) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Vectorised: (64 lowercase hex keys, mask of the rows that were raw,
    mask of the rows that already were digests). Blank keys stay blank (the
    validator reports them). Raw keys hash once per distinct value, so a
    file of repeated e-mail addresses stays cheap."""
    arrow = text_array(keys)
    digest = _np_bool(pc.match_substring_regex(arrow, r"^[0-9a-f]{64}$"))
    if digest.all():
        return arrow, np.zeros(len(arrow), dtype=bool), digest
    others = np.flatnonzero(~digest)
    encoded = pc.dictionary_encode(pc.take(arrow, pa.array(others)))
    replacement, kind = [], []  # kind: 0 blank, 1 digest in capitals, 2 raw
    for value in encoded.dictionary.to_pylist():
        if value == "":
            replacement.append("")
            kind.append(0)
        elif HEX64.fullmatch(value):
            replacement.append(value.lower())
            kind.append(1)
        else:
            replacement.append(hash_customer_key(value))
            kind.append(2)
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    kinds = np.asarray(kind, dtype=np.int8)[indices]
    digest[others[kinds == 1]] = True
    raw_mask = np.zeros(len(arrow), dtype=bool)
    raw_mask[others[kinds == 2]] = True
    mask = np.zeros(len(arrow), dtype=bool)
    mask[others] = True
    values = pc.take(pa.array(replacement, pa.string()), encoded.indices)
    return pc.replace_with_mask(arrow, pa.array(mask), values), raw_mask, digest


# --- Cards and tokens ----------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = ord(char) - 48
        if index % 2:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and bool(ISSUER_RE.match(digits)) and luhn_ok(digits)


def mask_card(digits: str) -> str:
    return f"{digits[:4]} **** **** {digits[-4:]}"


def mask_token(prefix: str) -> str:
    return f"{prefix}_****"


def find_sensitive(text: str) -> list[tuple[str, str]]:
    """[(code, masked)] for each card number or payment token in `text`."""
    found = []
    if not text:
        return found
    for match in CARD_RE.finditer(text):
        digits = re.sub(r"[ \-]", "", match.group())
        if is_card_number(digits):
            found.append(("card_number", mask_card(digits)))
    for match in TOKEN_RE.finditer(text):
        found.append(("payment_token", mask_token(match.group(1))))
    return found


NUL_SHOWN = "\u2400"
# Row-error codes of values that must never be kept (nor the file holding them).
SENSITIVE_CODES = ("card_number", "payment_token")


def redact(text: str) -> str:
    """`text` with every card number and payment token masked (and NUL,
    which no database text column takes, shown as ␀)."""
    if not text:
        return text
    text = text.replace("\x00", NUL_SHOWN)

    def card(match):
        digits = re.sub(r"[ \-]", "", match.group())
        return mask_card(digits) if is_card_number(digits) else match.group()

    text = CARD_RE.sub(card, text)
    return TOKEN_RE.sub(lambda m: mask_token(m.group(1)), text)


def candidate_rows(columns: list[pd.Series]) -> np.ndarray:
    """Positions of the rows where some cell may hold a card or a token:
    the row's cells joined (Arrow, C++) and matched once with RE2. Only
    these rows get the exact Python check."""
    if not columns or len(columns[0]) == 0:
        return np.array([], dtype=np.int64)
    arrays = [text_array(c) for c in columns]
    joined = arrays[0] if len(arrays) == 1 else pc.binary_join_element_wise(*arrays, "\x1f")
    hit = pc.fill_null(pc.match_substring_regex(joined, PREFILTER), False)
    return np.flatnonzero(_np_bool(hit))


def text_array(values) -> pa.Array:
    """Any column (Series, list, Arrow array) as one Arrow string array."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        array = values
    else:
        array = pa.array(values.array if isinstance(values, pd.Series) else values)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
    if array.type != pa.string():
        array = pc.cast(array, pa.string())
    return array


def _np_bool(array) -> np.ndarray:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.to_numpy(zero_copy_only=False).astype(bool, copy=False)
