"""Every role × endpoint and page: allowed works, not allowed is 403 (or the
login page for nobody)."""

import pytest

from reconciliation.models import DataRequest
from reconciliation.permissions import ROLE_ACTIONS, Action, Role, can

ALLOWED_TO_CREATE = {"louis", "pls"}


@pytest.mark.parametrize("who", ["louis", "wade", "huber", "pls", "outsider"])
def test_create_request_by_role(who, request, api_as):
    user = request.getfixturevalue(who) if who != "pls" else "pls"
    response = api_as(user).post("/api/kolable/data-requests", {})
    if who in ALLOWED_TO_CREATE:
        assert response.status_code == 201
    else:
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
        assert not DataRequest.objects.exists()


@pytest.mark.parametrize("who", ["louis", "wade", "huber", "pls", "outsider"])
def test_read_requests_by_role(who, request, api_as):
    user = request.getfixturevalue(who) if who != "pls" else "pls"
    response = api_as(user).get("/api/kolable/data-requests")
    assert response.status_code == (403 if who == "outsider" else 200)


@pytest.mark.parametrize("who", ["louis", "wade", "huber", "pls", "outsider"])
def test_close_request_by_role(who, request, api_as):
    created = api_as("pls").post("/api/kolable/data-requests", {}).json()
    user = request.getfixturevalue(who) if who != "pls" else "pls"
    response = api_as(user).post(f"/api/kolable/data-requests/{created['id']}/close", {})
    assert response.status_code == (200 if who == "louis" else 403)


PAGES = [
    ("/", {"louis", "wade", "huber", "pls"}),
    ("/requests/new/", {"louis", "pls"}),
    ("/template.xlsx", {"louis", "wade", "huber", "pls"}),
    ("/inbox/", {"louis", "wade", "huber", "pls", "outsider"}),
]


@pytest.mark.parametrize(("path", "allowed"), PAGES)
@pytest.mark.parametrize("who", ["louis", "wade", "huber", "pls", "outsider"])
def test_pages_by_role(client, request, who, path, allowed):
    client.force_login(request.getfixturevalue(who))
    response = client.get(path)
    assert response.status_code == (200 if who in allowed else 403)


@pytest.mark.parametrize("path", ["/", "/requests/new/", "/inbox/", "/template.csv"])
def test_pages_need_sign_in(client, seeded, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_request_detail_page_by_role(client, request, api_as):
    created = api_as("pls").post("/api/kolable/data-requests", {}).json()
    for who, status in [("louis", 200), ("wade", 200), ("huber", 200), ("outsider", 403)]:
        client.force_login(request.getfixturevalue(who))
        assert client.get(f"/requests/{created['id']}/").status_code == status


def test_close_page_only_for_louis(client, wade, louis, api_as):
    created = api_as("pls").post("/api/kolable/data-requests", {}).json()
    client.force_login(wade)
    assert client.post(f"/requests/{created['id']}/close/").status_code == 403
    client.force_login(louis)
    assert client.post(f"/requests/{created['id']}/close/", {"note": "done"}).status_code == 302
    assert DataRequest.objects.get(pk=created["id"]).status == "closed"


def test_groups_match_the_permission_table(seeded):
    """The data migration's copy of the role table equals permissions.ROLE_ACTIONS."""
    from django.contrib.auth import get_user_model

    for role, actions in ROLE_ACTIONS.items():
        user = get_user_model().objects.get(username=role.value)
        for action in Action:
            assert can(user, action) == (action in actions), (role, action)


def test_superuser_may_do_everything(db):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", password="x" * 12)
    assert all(can(admin, action) for action in Action)
    assert Role.LOUIS.value == "louis"


def test_a_permission_granted_to_the_person_counts_beside_their_role(
    outsider, huber, django_assert_num_queries
):
    """Permissions come from the person and from their groups (one query);
    a deactivated account has none."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    outsider.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="reconciliation", codename=Action.VIEW_EVIDENCE.value
        )
    )
    outsider = get_user_model().objects.get(pk=outsider.pk)
    assert can(outsider, Action.VIEW_EVIDENCE)
    assert not can(outsider, Action.TAG_EVIDENCE)

    huber.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="reconciliation", codename=Action.DECIDE_REVENUE.value
        )
    )
    huber = get_user_model().objects.get(pk=huber.pk)
    with django_assert_num_queries(1):
        assert can(huber, Action.DECIDE_REVENUE)
        assert can(huber, Action.TAG_EVIDENCE)
    assert huber.get_all_permissions() >= {
        f"reconciliation.{action.value}" for action in ROLE_ACTIONS[Role.HUBER]
    }

    huber.is_active = False
    huber.save(update_fields=["is_active"])
    huber = get_user_model().objects.get(pk=huber.pk)
    assert not can(huber, Action.TAG_EVIDENCE)
    assert huber.get_all_permissions() == set()
