"""Louis configures the Kolable API source on its page, presses "sync now",
the worker runs it, the run shows in the history; the stub changes some
statuses and the next run shows exactly those. Laptop and phone widths."""

import pytest
from playwright.sync_api import expect

from reconciliation.kolable_stub import KolableApiStub
from reconciliation.models import Order, SyncRun
from reconciliation.services.sync import execute_run
from tests.e2e.test_layout import MEASURE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKEN = "stub-token-5678"  # noqa: S105 - the stub's test token


@pytest.fixture
def stub(settings):
    settings.SYNC_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.SYNC_BACKOFF_SECONDS = 0.01
    server = KolableApiStub(orders=300, seed=7, token=TOKEN).start()
    yield server
    server.stop()


def _work_the_queue():
    """What the django-q2 worker does with the queued run."""
    (run,) = SyncRun.objects.filter(status=SyncRun.Status.QUEUED)
    return execute_run(run_id=run.pk)


def _holds(page, name):
    measured = page.evaluate(MEASURE)
    assert measured["doc"] <= measured["vw"], (name, measured)
    assert measured["spilled"] == [], (name, measured)


def test_louis_configures_the_source_and_syncs_now(page_for, shot, stub, louis, huber, project):
    page = page_for(louis)
    page.goto("/sources/")
    expect(page.get_by_test_id("no-source")).to_be_visible()
    form = page.get_by_test_id("source-form")
    form.locator("input[name=base_url]").fill(stub.base_url)
    form.locator("input[name=token]").fill(TOKEN)
    form.locator("input[name=page_size]").fill("100")
    page.get_by_test_id("source-save").click()
    expect(page.get_by_test_id("source-token")).to_have_text("••••5678")
    assert TOKEN not in page.content()
    expect(page.get_by_test_id("source-cursor")).to_have_text("尚未同步")

    page.get_by_test_id("sync-now").click()
    expect(page.get_by_test_id("sync-run")).to_have_attribute("data-status", "queued")
    run = _work_the_queue()
    assert run.new_orders == 300
    page.reload()
    first = page.get_by_test_id("sync-run").first
    expect(first).to_have_attribute("data-status", "succeeded")
    expect(first.get_by_test_id("run-counts")).to_have_text("300 / 0")
    assert Order.objects.filter(project=project).count() == 300

    changed = stub.data.advance(5)
    page.get_by_test_id("sync-now").click()
    _work_the_queue()
    page.reload()
    latest = page.get_by_test_id("sync-run").first
    expect(latest.get_by_test_id("run-counts")).to_have_text("0 / 5")
    for order_id in changed:
        assert Order.objects.get(project=project, order_id=order_id).payment_status == (
            stub.data.state_of(order_id)
        )
    # Both syncs are imports of the book on the scorecard.
    page.goto("/scorecard/")
    imports = page.get_by_test_id("book-import")
    expect(imports).to_have_count(2)
    expect(page.get_by_test_id("import-new")).to_have_text(["300", "0"])
    expect(page.get_by_test_id("import-changed")).to_have_text(["0", "5"])
    page.goto("/sources/")
    shot(page, "sync-sources-1280")
    _holds(page, "sources@1280")

    phone = page_for(louis, width=390, height=844)
    phone.goto("/sources/")
    expect(phone.get_by_test_id("sync-run")).to_have_count(2)
    shot(phone, "sync-sources-390")
    _holds(phone, "sources@390")

    # Huber's digest of the second run is in his inbox.
    inbox = page_for(huber)
    inbox.goto("/inbox/")
    expect(inbox.locator("li.kind-sync_digest").first).to_contain_text(
        "新訂單 0 筆、變更 5 筆待補佐證"
    )
    shot(inbox, "sync-inbox-huber-1280")
