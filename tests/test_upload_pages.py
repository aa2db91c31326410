"""Wade's upload page without JavaScript: a plain multipart form post, the
result shown on the page it redirects to, reports downloadable, links on
the request detail page for the roles that may use them."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from reconciliation.models import DataRequest, Upload
from reconciliation.services.requests import create_data_request
from tests import upload_samples as samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_request(louis):
    return create_data_request(requested_by=louis)


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def page_url(data_request):
    return f"/requests/{data_request.pk}/upload/"


def test_upload_page_offers_the_template_and_the_form(wade, data_request):
    response = client_for(wade).get(page_url(data_request))
    assert response.status_code == 200
    html = response.content.decode()
    assert "/template.xlsx" in html and "/template.csv" in html
    assert 'enctype="multipart/form-data"' in html
    assert "data-upload-form" in html and "js/upload.js" in html
    for name in ("order_id", "payment_status", "owner_note"):
        assert f"<code>{name}</code>" in html
    assert "上傳訂單付款檔" in html


@pytest.mark.parametrize("who", ["louis", "huber", "outsider"])
def test_upload_page_is_wade_and_pls_only(request, data_request, who):
    user = request.getfixturevalue(who)
    assert client_for(user).get(page_url(data_request)).status_code == 403
    response = client_for(user).post(
        page_url(data_request), {"file": SimpleUploadedFile("a.csv", b"order_id\n1\n")}
    )
    assert response.status_code == 403
    assert Upload.objects.count() == 0


def test_plain_form_post_shows_row_errors_then_accepted(wade, data_request):
    client = client_for(wade)
    rows = samples.good_rows(3)
    rows[1]["amount"] = "-28000"
    rows[2]["payment_ref"] = "4111-1111-1111-1111"
    bad = samples.csv_bytes(rows, columns=[c for c in samples.HEADERS if c != "source_event"])
    response = client.post(page_url(data_request), {"file": SimpleUploadedFile("bad.csv", bad)})
    upload = Upload.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{page_url(data_request)}?result={upload.pk}"

    page = client.get(response["Location"]).content.decode()
    assert 'data-testid="failed-notice"' in page
    assert "<code>source_event</code>" in page  # the missing column, named
    assert "amount -28000 是負數。" in page
    assert "4111 **** **** 1111" in page
    assert "4111-1111-1111-1111" not in page
    assert f"/uploads/{upload.pk}/report.xlsx" in page
    assert f"/uploads/{upload.pk}/report.csv" in page

    good = samples.csv_bytes(samples.good_rows(3))
    response = client.post(page_url(data_request), {"file": SimpleUploadedFile("good.csv", good)})
    page = client.get(response["Location"]).content.decode()
    assert 'data-testid="accepted-notice"' in page
    assert "3 列已收下" in page
    data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.ACCEPTED
    # The history lists both uploads, newest first.
    assert page.index("good.csv") < page.index("bad.csv")


def test_same_file_again_says_so(wade, data_request):
    client = client_for(wade)
    data = samples.csv_bytes(samples.good_rows(2))
    client.post(page_url(data_request), {"file": SimpleUploadedFile("a.csv", data)})
    response = client.post(page_url(data_request), {"file": SimpleUploadedFile("b.csv", data)})
    assert response["Location"].endswith("&duplicate=1")
    page = client.get(response["Location"]).content.decode()
    assert 'data-testid="duplicate-notice"' in page
    assert Upload.objects.count() == 1


def test_xhr_post_gets_the_same_redirect(wade, data_request):
    """upload.js posts the same form with XMLHttpRequest and the CSRF token
    in a header; the answer is the same redirect to the result."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(wade)
    page = client.get(page_url(data_request))
    token = page.cookies["csrftoken"].value
    response = client.post(
        page_url(data_request),
        {"file": SimpleUploadedFile("a.csv", samples.csv_bytes(samples.good_rows(1)))},
        headers={"X-Requested-With": "XMLHttpRequest", "X-CSRFToken": token},
    )
    assert response.status_code == 302
    assert Upload.objects.get().schema_status == Upload.SchemaStatus.ACCEPTED


def test_form_without_a_file_is_400_with_the_field_error(wade, data_request):
    response = client_for(wade).post(page_url(data_request), {})
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()


def test_oversize_page_post_is_413_before_reading(wade, data_request, settings):
    settings.MAX_UPLOAD_MB = 1
    big = b"order_id\n" + b"1\n" * 1_500_000
    response = client_for(wade).post(
        page_url(data_request), {"file": SimpleUploadedFile("big.csv", big)}
    )
    assert response.status_code == 413
    assert "超過上限 1 MB" in response.content.decode()
    assert Upload.objects.count() == 0


def test_closed_request_page_takes_no_file(wade, data_request):
    DataRequest.objects.filter(pk=data_request.pk).update(status=DataRequest.Status.CLOSED)
    page = client_for(wade).get(page_url(data_request)).content.decode()
    assert 'data-testid="not-taking-files"' in page
    assert "data-upload-form" not in page
    response = client_for(wade).post(
        page_url(data_request),
        {"file": SimpleUploadedFile("a.csv", samples.csv_bytes(samples.good_rows(1)))},
    )
    assert response.status_code == 409
    assert "不再收檔" in response.content.decode()


def test_request_detail_links_upload_for_wade_and_reports_for_all(wade, louis, data_request):
    detail = f"/requests/{data_request.pk}/"
    assert 'data-testid="upload-link"' in client_for(wade).get(detail).content.decode()
    assert 'data-testid="upload-link"' not in client_for(louis).get(detail).content.decode()

    rows = samples.good_rows(2)
    rows[0]["payment_status"] = "shipped"
    client_for(wade).post(
        page_url(data_request), {"file": SimpleUploadedFile("x.csv", samples.csv_bytes(rows))}
    )
    upload = Upload.objects.get()
    louis_page = client_for(louis).get(detail).content.decode()
    assert 'data-testid="upload-reports"' in louis_page
    assert f"/uploads/{upload.pk}/report.xlsx" in louis_page
    report = client_for(louis).get(f"/uploads/{upload.pk}/report.csv")
    assert report.status_code == 200
    assert report["Content-Disposition"].startswith("attachment")
    body = b"".join(report.streaming_content).decode("utf-8-sig")
    assert "unknown_payment_status" in body and "shipped" in body
    assert client_for(louis).get(f"/uploads/{upload.pk}/report.pdf").status_code == 404


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_the_downloaded_template_is_accepted_as_it_is(wade, data_request, fmt):
    """The template's headers and example row pass the validator they
    describe (one schema, many readers)."""
    client = client_for(wade)
    template = client.get(f"/template.{fmt}")
    assert template.status_code == 200
    response = client.post(
        page_url(data_request),
        {"file": SimpleUploadedFile(f"kolable-orders-template.{fmt}", template.content)},
    )
    upload = Upload.objects.get()
    assert upload.schema_status == Upload.SchemaStatus.ACCEPTED, upload.row_errors
    assert upload.row_count == 1
    assert response.status_code == 302
