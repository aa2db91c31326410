"""Sign-in throttling, the audit trail of failed sign-ins, and the headers
every page carries."""

from reconciliation.models import AuditEvent


def test_failed_logins_are_audited_and_throttled(client, louis, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for attempt in range(3):
        response = client.post("/accounts/login/", {"username": "louis", "password": "wrong"})
        # The third failure reaches the limit and is answered with the lock-out page.
        assert response.status_code == (200 if attempt < 2 else 429)
    events = AuditEvent.objects.filter(verb=AuditEvent.Verb.LOGIN_FAILED)
    assert events.count() == 3
    assert "wrong" not in str(list(events.values_list("message", "data")))
    locked = client.post("/accounts/login/", {"username": "louis", "password": "kolable-demo-pass"})
    assert locked.status_code == 429
    assert "登入失敗次數過多" in locked.content.decode()


def test_correct_login_works_and_resets(client, louis):
    response = client.post(
        "/accounts/login/", {"username": "louis", "password": "kolable-demo-pass"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_pages_send_a_csp_without_unsafe_inline(client, louis):
    client.force_login(louis)
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
