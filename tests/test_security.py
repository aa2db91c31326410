"""Sign-in throttling, the audit trail of failed sign-ins, the headers
every page carries, and what an API token keeps of its use."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from reconciliation.api.auth import LAST_USED_PRECISION
from reconciliation.models import ApiToken, AuditEvent


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


def test_behind_the_proxy_the_lock_is_the_attackers_address_not_louis(client, louis, settings):
    """With PROXY_COUNT=1 (a load balancer) every request comes from the
    balancer's address; the lock is keyed on the client address the balancer
    appended to X-Forwarded-For, so five bad posts lock the attacker, while
    Louis signs in from his own address."""
    from axes.models import AccessAttempt

    settings.PROXY_COUNT = 1
    balancer = {"REMOTE_ADDR": "10.0.0.2"}
    attacker = {**balancer, "HTTP_X_FORWARDED_FOR": "198.51.100.66"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "louis", "password": "wrong"}, **attacker)
    locked = client.post(
        "/accounts/login/", {"username": "louis", "password": "kolable-demo-pass"}, **attacker
    )
    assert locked.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.66"}
    # A spoofed left-most entry does not move the attacker to a fresh address.
    spoofed = {**balancer, "HTTP_X_FORWARDED_FOR": "203.0.113.9, 198.51.100.66"}
    again = client.post(
        "/accounts/login/", {"username": "louis", "password": "kolable-demo-pass"}, **spoofed
    )
    assert again.status_code == 429
    own = {**balancer, "HTTP_X_FORWARDED_FOR": "203.0.113.10"}
    signed_in = client.post(
        "/accounts/login/", {"username": "louis", "password": "kolable-demo-pass"}, **own
    )
    assert signed_in.status_code == 302


def test_many_addresses_delay_the_account_but_never_lock_its_owner_out(client, louis, settings):
    """Failures from many addresses (each locked on its own after five) put a
    per-username delay on the account: even the right password from a fresh
    address is refused until USERNAME_LOCK_SECONDS after the latest failure,
    then it signs in."""
    import time_machine
    from django.utils import timezone

    settings.PROXY_COUNT = 1
    settings.USERNAME_FAILURE_LIMIT = 20
    settings.USERNAME_LOCK_SECONDS = 60
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for n in range(4):
            attacker = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": f"198.51.100.{n}"}
            for _ in range(settings.AXES_FAILURE_LIMIT):
                client.post("/accounts/login/", {"username": "louis", "password": "x"}, **attacker)
        own = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.10"}
        waiting = client.post(
            "/accounts/login/", {"username": "louis", "password": "kolable-demo-pass"}, **own
        )
        assert waiting.status_code == 200  # the form again: not signed in
        assert "_auth_user_id" not in client.session
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        signed_in = client.post(
            "/accounts/login/", {"username": "louis", "password": "kolable-demo-pass"}, **own
        )
        assert signed_in.status_code == 302
        # The attackers' own addresses stay locked.
        attacker = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.0"}
        client.logout()
        locked = client.post(
            "/accounts/login/", {"username": "louis", "password": "kolable-demo-pass"}, **attacker
        )
        assert locked.status_code == 429


def test_a_token_records_its_last_use_without_a_write_per_request(pls_api):
    """The first call stamps last_used_at; calls within LAST_USED_PRECISION
    read only (PLS polls /latest), and a later call stamps it again."""
    latest = "/api/kolable/reconciliation/latest"
    assert pls_api.get(latest).status_code == 200
    token = ApiToken.objects.get(user__username="pls", revoked_at__isnull=True)
    first = token.last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as captured:
        assert pls_api.get(latest).status_code == 200
    assert not [q for q in captured.captured_queries if q["sql"].startswith("UPDATE")]
    token.refresh_from_db()
    assert token.last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - LAST_USED_PRECISION)
    assert pls_api.get(latest).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at > first
