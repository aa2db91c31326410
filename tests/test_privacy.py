"""privacy.py: customer-key hashing, card/token detection and masking, the
formula-injection guard — and that no raw value reaches the database, a
report, the normalised cache, a log line or an API answer."""

import hashlib
import hmac
import io
import logging
import zipfile

import pandas as pd
import pyarrow as pa
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from reconciliation import privacy
from reconciliation.models import AuditEvent, Notification, Upload
from reconciliation.services.frames import normalised_cache_path
from reconciliation.services.reports import report_paths
from reconciliation.services.requests import create_data_request
from tests import upload_samples as samples


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
        ("+886912345678", "'+886912345678"),
        ("-28000", "-28000"),  # a negative amount is a number, not a formula
        ("-1+cmd", "'-1+cmd"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("LIVE-0512", "LIVE-0512"),
        ("", ""),
        (28000, 28000),
        (-5.5, -5.5),
        (None, None),
    ],
)
def test_safe_cell(value, safe):
    assert privacy.safe_cell(value) == safe


@pytest.mark.parametrize(
    "digits",
    [
        "4111111111111111",  # Visa
        "4012888888881881",
        "5555555555554444",  # Mastercard
        "2223003122003222",  # Mastercard 2-series
        "378282246310005",  # Amex
        "6011111111111117",  # Discover
        "3530111333300000",  # JCB
        "6200000000000005",  # UnionPay
    ],
)
def test_real_test_cards_are_cards(digits):
    assert privacy.is_card_number(digits)
    assert privacy.find_sensitive(f"卡號 {digits} 請退") == [
        ("card_number", f"{digits[:4]} **** **** {digits[-4:]}")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "KOL-20260512-0001234",  # date-stamped order id
        "KOL-20260512-000123",
        "576461234567891234",  # TikTok order number (18 digits, Luhn by chance or not)
        "2026-05-12 20:15:00",
        "4111111111111112",  # Luhn fails
        "41111111111111111111",  # 20 digits
        "ab4111111111111111",  # glued to letters
        "0912-345-678",  # phone
        hashlib.sha256(b"x").hexdigest(),
    ],
)
def test_not_cards(text):
    assert [c for c, _ in privacy.find_sensitive(text)] == []


def test_cards_with_spaces_and_dashes_are_masked_in_text():
    text = "退款卡 4111 1111 1111 1111 與 5555-5555-5555-4444"
    assert privacy.redact(text) == "退款卡 4111 **** **** 1111 與 5555 **** **** 4444"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("tok_1N3T00LkdIwHu7ixt44h1F8k", [("payment_token", "tok_****")]),
        ("ref pm_1Q0PsIJvEtkwdCNYMSaVuRz6", [("payment_token", "pm_****")]),
        ("card_1MvQ2a2eZvKYlo2C", [("payment_token", "card_****")]),
        ("ch_3MmlLrLkdIwHu7ix0snN0B15", []),  # a charge id is a fine payment_ref
        ("pi_3MtwBwLkdIwHu7ix28a3tqPa", []),
        ("card_payment", []),
        ("tok_visa", []),  # Stripe's test token names, no secret in them
    ],
)
def test_payment_tokens(text, found):
    assert privacy.find_sensitive(text) == found


def test_prefilter_lets_every_card_and_token_through():
    cells = [
        "4111 1111 1111 1111",
        "x 378282246310005 y",
        "tok_1N3T00LkdIwHu7ixt44h1F8k",
        "KOL-20260512-0001234",
        "PAY-4611209229",
    ]
    hits = privacy.candidate_rows([pa.array(cells)])
    assert hits.tolist() == [0, 1, 2]


def test_customer_key_hashing(settings):
    settings.CUSTOMER_KEY_SECRET = "test-secret"
    digest = hashlib.sha256(b"c").hexdigest()
    assert privacy.hash_customer_key(digest) == digest
    assert privacy.hash_customer_key(digest.upper()) == digest
    expected = hmac.new(b"test-secret", b"wade@example.com", hashlib.sha256).hexdigest()
    assert privacy.hash_customer_key("wade@example.com") == expected
    assert privacy.hash_customer_key(" Wade@Example.COM ") == expected
    keys, raw, digests = privacy.hash_customer_keys(
        pa.array(["wade@example.com", digest.upper(), "", "0912345678"])
    )
    assert keys.to_pylist() == [
        expected,
        digest,
        "",
        privacy.hash_customer_key("0912345678"),
    ]
    assert raw.tolist() == [True, False, False, True]
    assert digests.tolist() == [False, True, False, False]


@pytest.mark.django_db
def test_no_raw_value_is_stored_shown_or_logged(api_as, wade, louis, caplog, settings):
    """Raw e-mail keys, a card number and a token go in; only hashes and
    masks come out — in the database, the reports, the API answer, the
    cache, the audit trail, Wade's message and the log."""
    data_request = create_data_request(requested_by=louis)
    raw_values = ["ada.lovelace@example.com", "4111 1111 1111 1111", "tok_1N3T00LkdIwHu7ixt44h1F8k"]
    rows = samples.good_rows(4)
    rows[0]["customer_key"] = raw_values[0]
    rows[1]["payment_ref"] = raw_values[1]
    rows[2]["owner_note"] = f"token {raw_values[2]}"
    rows[3]["amount"] = '=HYPERLINK("http://x","y")'
    caplog.set_level(logging.DEBUG)
    response = api_as(wade).upload(
        f"/api/kolable/data-requests/{data_request.pk}/upload",
        {"file": SimpleUploadedFile("pii.csv", samples.csv_bytes(rows))},
    )
    assert response.status_code == 422
    upload = Upload.objects.get()
    stored = [
        response.content.decode(),
        str(upload.row_errors),
        str(upload.file_errors),
        str(upload.warnings),
        str(list(AuditEvent.objects.values_list("message", "data"))),
        str(list(Notification.objects.values_list("subject", "body", "payload"))),
        caplog.text,
    ]
    xlsx, csv_path = report_paths(upload.pk)
    stored.append(csv_path.read_bytes().decode("utf-8-sig"))
    with zipfile.ZipFile(io.BytesIO(xlsx.read_bytes())) as archive:
        stored.extend(archive.read(n).decode("utf-8", "replace") for n in archive.namelist())
    everything = "\n".join(stored)
    for raw in raw_values:
        assert raw not in everything
    assert "4111 **** **** 1111" in everything and "tok_****" in everything
    # The formula came back only neutralised.
    assert "'=HYPERLINK" in csv_path.read_bytes().decode("utf-8-sig")
    assert '"=HYPERLINK' not in csv_path.read_bytes().decode("utf-8-sig").replace("'=", "")

    # Fix the card and the token; the raw e-mail is hashed on acceptance and
    # appears neither in the normalised cache nor in the answer.
    rows[1]["payment_ref"] = "PAY-1"
    rows[2]["owner_note"] = ""
    rows[3]["amount"] = "28000"
    accepted = api_as(wade).upload(
        f"/api/kolable/data-requests/{data_request.pk}/upload",
        {"file": SimpleUploadedFile("fixed.csv", samples.csv_bytes(rows))},
    )
    assert accepted.status_code == 201
    assert raw_values[0] not in accepted.content.decode()
    fixed = Upload.objects.get(pk=accepted.json()["upload_id"])
    cache = pd.read_feather(normalised_cache_path(fixed.pk))
    cells = {str(v) for column in cache.columns for v in cache[column].tolist()}
    assert raw_values[0] not in cells
    assert privacy.hash_customer_key(raw_values[0]) in cells
    assert raw_values[0] not in caplog.text


def test_the_scorecard_names_its_people_without_reading_their_password_hashes(louis, wade):
    """The people a page names are joined by name only: no page holds a
    password hash it could leak into a log or an error report."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reconciliation.selectors.scorecard import default_project, scorecard

    data_request = create_data_request(requested_by=louis, data_owner_username="wade")
    with CaptureQueriesContext(connection) as queries:
        card = scorecard(default_project())
    assert card.data_request.pk == data_request.pk
    assert str(card.data_owner) and card.next_job.evidence["people_sync"]["remind"] == "wade"
    assert queries.captured_queries
    assert not [q["sql"] for q in queries.captured_queries if "password" in q["sql"]]
