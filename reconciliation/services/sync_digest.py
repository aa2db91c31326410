"""After every sync run, the exception owner list: each owner gets one
digest of what is new for them since the last run, and nothing when nothing
is new.

- Wade: the run's data errors (rows the validator refused), orders of the
  book newly missing from a snapshot, and once the project has a settlement
  file, the settlement lines no order has (orphans arrived since the last
  run) and the paid orders newly past the settlement window without a line.
- Huber: new or changed orders that need evidence.
- Louis: the book moved after his decision (the delta), or new verified
  orders awaiting one.

What each digest counted is kept on the run (`SyncRun.digest`), so the next
run tells only the difference. A refused token is not a digest: Louis gets
one blocker card per failing spell (until a run succeeds again)."""

from django.urls import reverse

from reconciliation.models import Notification, SyncRun
from reconciliation.selectors.settlement import orphan_lines, settlement_figures
from reconciliation.services import book
from reconciliation.services.notify import absolute, people, queue_message
from reconciliation.services.revenue.decision import book_for, decision_delta, latest_decision


def _previous(run: SyncRun) -> SyncRun | None:
    return (
        SyncRun.objects.filter(source=run.source, finished_at__isnull=False)
        .exclude(pk=run.pk)
        .exclude(digest={})
        .order_by("-finished_at")
        .first()
    )


def digest_counts(run: SyncRun) -> dict:
    """What is new for each owner after `run` (see the module docstring)."""
    project = run.source.project
    previous = _previous(run)
    missing_total = book.missing_count(project)
    missing_before = int((previous.digest if previous else {}).get("missing_total", 0))
    upload = run.upload
    data_errors = 0
    if upload is not None and run.status == SyncRun.Status.FAILED:
        data_errors = upload.row_error_count + len(upload.file_errors or [])
    settlement = _settlement_counts(project, previous.digest if previous else {})
    changed_book = run.new_orders + run.changed_orders
    decision = latest_decision(project)
    state = decision_delta(book_for(project), decision)
    louis = {}
    if changed_book and decision is not None and state["changed_since_decision"]:
        louis = {"decision": decision.decision, **(state["delta"] or {})}
    elif changed_book and decision is None:
        totals = (book_for(project).totals or {}) if book_for(project) else {}
        louis = {
            "decision": "",
            "paid_amount": float(totals.get("paid_amount") or 0),
            "paid_orders": int(totals.get("paid_orders") or 0),
        }
    return {
        "missing_total": missing_total,
        "settlement_missing_total": settlement["missing_total"],
        "orphan_watermark": settlement["watermark"],
        "wade": {
            "data_errors": data_errors,
            "new_missing": max(0, missing_total - missing_before),
            "new_orphans": settlement["new_orphans"],
            "new_settlement_missing": settlement["new_missing"],
        },
        "huber": {"new_orders": run.new_orders, "changed_orders": run.changed_orders},
        "louis": louis,
    }


def _settlement_counts(project, before: dict) -> dict:
    """Orphan lines that arrived since the last digest (by line id: one
    resolved and one new still tell the new one) and how many more paid
    orders are past the settlement window without a line."""
    figures = settlement_figures(project)
    if figures is None:
        return {"missing_total": 0, "watermark": 0, "new_orphans": 0, "new_missing": 0}
    watermark = int(before.get("orphan_watermark", 0))
    orphans = orphan_lines(project)
    newest = orphans.order_by("-id").values_list("id", flat=True).first()
    missing_total = int(figures["missing_count"])
    return {
        "missing_total": missing_total,
        "watermark": max(watermark, newest or 0),
        "new_orphans": orphans.filter(id__gt=watermark).count(),
        "new_missing": max(0, missing_total - int(before.get("settlement_missing_total", 0))),
    }


def send_digests(*, run: SyncRun) -> list[Notification]:
    """Write the owners' digests of `run` (call in the run's finishing
    transaction). One per owner and run (dedupe key)."""
    counts = digest_counts(run)
    SyncRun.objects.filter(pk=run.pk).update(digest=counts)
    run.digest = counts
    louis, wade, huber = people(run.source.data_request)
    base = {
        "project": run.source.project.name,
        "run_id": str(run.pk),
        "sources_url": absolute(reverse("sources")),
    }
    payload = {
        "run_id": str(run.pk),
        "source_id": str(run.source_id),
        "status": run.status,
        "upload_id": str(run.upload_id) if run.upload_id else None,
        "import_id": str(run.reconciliation_import_id) if run.reconciliation_import_id else None,
    }
    written = []
    wade_counts, huber_counts, louis_counts = counts["wade"], counts["huber"], counts["louis"]
    settlement_news = wade_counts["new_orphans"] + wade_counts["new_settlement_missing"]
    if wade is not None and (
        wade_counts["data_errors"] or wade_counts["new_missing"] or settlement_news
    ):
        written += _queue(
            run,
            wade,
            "sync_digest_wade",
            {
                **base,
                "person": str(wade),
                "data_errors_text": f"{wade_counts['data_errors']:,}",
                "new_missing_text": f"{wade_counts['new_missing']:,}",
                "new_orphans_text": f"{wade_counts['new_orphans']:,}",
                "new_settlement_missing_text": f"{wade_counts['new_settlement_missing']:,}",
                "has_errors": bool(wade_counts["data_errors"]),
                "has_missing": bool(wade_counts["new_missing"]),
                "has_orphans": bool(wade_counts["new_orphans"]),
                "has_settlement_missing": bool(wade_counts["new_settlement_missing"]),
                "orphans_url": absolute(reverse("settlement-orphans")),
                "settlement_news_text": f"{settlement_news:,}",
                "scorecard_url": absolute(reverse("scorecard")),
                "upload_url": absolute(
                    reverse("upload-page", args=[run.source.data_request_id])
                    + (f"?result={run.upload_id}" if run.upload_id else "")
                ),
            },
            payload,
            "data-owner",
        )
    if huber is not None and (huber_counts["new_orders"] or huber_counts["changed_orders"]):
        query = "?program_id=*&tag=all&changed=1" if huber_counts["changed_orders"] else ""
        written += _queue(
            run,
            huber,
            "sync_digest_huber",
            {
                **base,
                "person": str(huber),
                "new_orders_text": f"{huber_counts['new_orders']:,}",
                "changed_orders_text": f"{huber_counts['changed_orders']:,}",
                "queue_url": absolute(reverse("evidence") + query),
            },
            payload,
            "verifier",
        )
    if louis is not None and louis_counts:
        amount = round(float(louis_counts.get("paid_amount", 0)))
        sign = "+" if amount >= 0 else "−"
        written += _queue(
            run,
            louis,
            "sync_digest_louis",
            {
                **base,
                "person": str(louis),
                "has_decision": bool(louis_counts.get("decision")),
                "amount_text": (
                    f"{sign}NT${abs(amount):,}"
                    if louis_counts.get("decision")
                    else f"NT${amount:,}"
                ),
                "orders_text": (
                    f"{int(louis_counts.get('paid_orders', 0)):+,}"
                    if louis_counts.get("decision")
                    else f"{int(louis_counts.get('paid_orders', 0)):,}"
                ),
                "new_orders_text": f"{run.new_orders:,}",
                "changed_orders_text": f"{run.changed_orders:,}",
                "scorecard_url": absolute(reverse("scorecard")),
            },
            payload,
            "owner",
        )
    return written


def _queue(run, person, template, params, payload, key) -> list[Notification]:
    return queue_message(
        recipient=person,
        kind=Notification.Kind.SYNC_DIGEST,
        template=template,
        params=params,
        data_request=run.source.data_request,
        payload=payload,
        dedupe_key=f"sync-digest:{run.pk}:{key}",
    )


def auth_blocker(*, run: SyncRun) -> list[Notification]:
    """Louis's one blocker card for a refused token: keyed by the last run
    that succeeded, so every failing run until the next success shares it."""
    source = run.source
    louis, _wade, _huber = people(source.data_request)
    if louis is None:
        return []
    last_success = (
        source.runs.filter(status=SyncRun.Status.SUCCEEDED).order_by("-finished_at").first()
    )
    return queue_message(
        recipient=louis,
        kind=Notification.Kind.BLOCKER_CARD,
        template="sync_auth_failed",
        params={
            "project": source.project.name,
            "person": str(louis),
            "base_url": source.base_url,
            "token_hint": source.token_hint,
            "error": run.error,
            "sources_url": absolute(reverse("sources")),
        },
        data_request=source.data_request,
        payload={"run_id": str(run.pk), "source_id": str(source.pk), "error_code": "auth"},
        dedupe_key=f"sync-auth:{source.pk}:{last_success.pk if last_success else 'never'}",
    )
