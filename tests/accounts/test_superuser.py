"""A superuser flag opens the Django admin's model permissions and nothing else: every portal
permission is decided by its rules predicate (docs/decisions.md, "Superusers"). Secretariat staff
work as staff in the secretariat group, without the flag."""

import pytest
import rules
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.services import SECRETARIAT_GROUP, secretariat_group_ensure
from apps.api.models import PersonalAccessToken
from apps.core.permissions import has_perm
from apps.grants import services as grant_services
from tests.api.factories import TokenFactory
from tests.factories import OrganizationFactory, OrgRoleFactory, StaffFactory, UserFactory
from tests.grants.factories import ApplicationFactory, ReviewerFactory

pytestmark = pytest.mark.django_db


def _login(client, user):
    if user.is_staff:
        TOTP.activate(user, generate_totp_secret())
    client.force_login(user)
    return client


@pytest.fixture(params=[False, True], ids=["superuser", "superuser_and_staff"])
def superuser(request):
    return User.objects.create_user(
        email=f"root{int(request.param)}@example.jp",
        password="x",
        is_superuser=True,
        is_staff=request.param,
    )


@pytest.fixture
def private_org():
    org = OrganizationFactory(is_listed=False)
    OrgRoleFactory(organization=org, role="owner")
    return org


@pytest.fixture
def assignment():
    application = ApplicationFactory()
    grant_services.application_submit(application_id=application.pk, actor=application.applicant)
    reviewer = ReviewerFactory(call=application.call).user
    return grant_services.assignment_create(
        application_id=application.pk, reviewer_user=reviewer, actor=StaffFactory()
    )


def test_a_superuser_who_is_not_a_member_cannot_manage_another_org(client, superuser, private_org):
    _login(client, superuser)
    for name in ("organizations:org-manage", "organizations:org-profile"):
        url = reverse(name, args=[private_org.slug])
        if superuser.is_staff and name == "organizations:org-manage":
            continue  # the secretariat (staff) reads an organization's page; managing it is the owner's
        assert client.get(url).status_code == 404, url
    url = reverse("organizations:org-profile", args=[private_org.slug])
    response = client.post(url, {"name_en": "Taken over KK", "name_ja": "乗っ取り"})
    assert response.status_code == 404
    private_org.refresh_from_db()
    assert private_org.name_en != "Taken over KK"


def test_a_superuser_without_staff_sees_no_private_org_page(client, private_org):
    root = User.objects.create_user(email="root@example.jp", is_superuser=True)
    _login(client, root)
    assert client.get(reverse("organizations:org-manage", args=[private_org.slug])).status_code == 404
    assert client.get(reverse("organizations:org-detail", args=[private_org.slug])).status_code == 404
    assert client.get(reverse("providers:org-grants", args=[private_org.slug])).status_code == 404
    # Secretariat pages are for staff: the flag alone opens none of them.
    for name in ("grants:staff-programs", "organizations:review-queue", "workinggroups:console"):
        assert client.get(reverse(name)).status_code == 404, name


def test_a_superuser_cannot_open_a_reviewers_page(client, superuser, assignment):
    _login(client, superuser)
    assert client.get(assignment.get_absolute_url()).status_code == 404
    criteria = assignment.application.call.criteria.all()
    assert (
        client.post(assignment.get_absolute_url(), {f"score_{c.pk}": "1" for c in criteria}).status_code
        == 404
    )
    assert not assignment.scores.exists()


def test_a_superuser_cannot_revoke_another_users_token(client, superuser):
    token = TokenFactory(user=UserFactory())
    _login(client, superuser)
    response = client.post(reverse("api:token-revoke", args=[token.pk]))
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert PersonalAccessToken.objects.filter(revoked_at__isnull=False).count() == 0


def test_every_portal_permission_ignores_the_superuser_flag(superuser, private_org, assignment):
    """The class: whatever object a permission is asked about, a superuser gets exactly what the same
    account without the flag gets (through User.has_perm too, which other apps call)."""
    from tests.factories import ApplicationFactory as MembershipApplicationFactory
    from tests.factories import ProviderFactory

    token = TokenFactory(user=UserFactory())
    membership_application = MembershipApplicationFactory(status="submitted")
    objects = {
        "organizations.view_application": membership_application,
        "organizations.review_application": None,
        "organizations": private_org,
        "allocations.request_for_org": private_org,
        "allocations.manage_round": None,
        "providers.view_provider_console": ProviderFactory(),
        "providers.manage_grants": None,
        "providers.view_org_grants": private_org,
        "api": token,
        "api.read_org": private_org,
        "grants.review_assignment": assignment,
        "grants.manage_programs": None,
        "grants": assignment.application,
    }
    twin = User.objects.create_user(email="twin@example.jp", is_staff=superuser.is_staff)
    checked = 0
    for name in rules.permissions.permissions:
        if name.startswith("workinggroups."):
            continue  # tests/workinggroups: group_access() ignores the flag the same way
        key = name if name in objects else name.split(".")[0]
        obj = objects[key]
        expected = rules.has_perm(name, twin, obj)
        assert superuser.has_perm(name, obj) is expected, name
        assert has_perm(superuser, name, obj) is expected, name
        checked += 1
    assert checked >= 15
    assert not superuser.has_perm("organizations.manage_org", private_org)
    assert not superuser.has_perm("grants.review_assignment", assignment)
    assert not superuser.has_perm("api.manage_token", token)


def test_a_superuser_keeps_the_django_admin(client):
    root = User.objects.create_superuser(email="admin@example.jp", password="x")
    _login(client, root)
    assert root.has_perm("grants.change_program") and root.has_perm("auth.change_group")
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 200


def test_a_deactivated_account_holds_no_portal_permission(private_org):
    owner = private_org.roles.get().user
    assert has_perm(owner, "organizations.manage_org", private_org)
    owner.is_active = False
    assert not has_perm(owner, "organizations.manage_org", private_org)
    assert not owner.has_perm("organizations.manage_org", private_org)


# --- the secretariat without the superuser flag ----------------------------------------------------


@pytest.fixture
def secretariat():
    user = UserFactory(email="desk@gpu-alliance.example")
    secretariat_group_ensure(members=[user])
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser
    return user


def test_secretariat_staff_open_every_admin_changelist_of_the_portal(client, secretariat):
    _login(client, secretariat)
    assert client.get(reverse("admin:index")).status_code == 200
    opened = 0
    for model in admin.site._registry:
        label = model._meta.app_label
        if label not in ("organizations", "allocations", "providers", "grants", "workinggroups", "reports"):
            continue
        url = reverse(f"admin:{label}_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url
        opened += 1
    assert opened >= 10
    # The audit log and the accounts are readable, not editable; groups are the superuser's.
    assert client.get(reverse("admin:governance_auditevent_changelist")).status_code == 200
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 200
    user_page = client.get(reverse("admin:accounts_user_change", args=[secretariat.pk]))
    assert user_page.status_code == 200 and b'name="is_superuser"' not in user_page.content
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403


def test_secretariat_staff_create_programs_in_the_admin(client, secretariat):
    """docs/grants.md: programs and calls are created and edited in the Django admin."""
    _login(client, secretariat)
    assert client.get(reverse("admin:grants_program_add")).status_code == 200
    assert client.get(reverse("admin:grants_call_add")).status_code == 200
    assert client.get(reverse("admin:workinggroups_workinggroup_add")).status_code == 200


def test_secretariat_staff_use_the_console(client, secretariat, assignment):
    _login(client, secretariat)
    for url in (
        reverse("grants:staff-programs"),
        reverse("grants:staff-application", args=[assignment.application_id]),
        reverse("organizations:review-queue"),
    ):
        assert client.get(url).status_code == 200, url
    # ... but not a reviewer's own page.
    assert client.get(assignment.get_absolute_url()).status_code == 404


def test_the_group_command_is_idempotent_and_refuses_unknown_accounts(secretariat):
    from io import StringIO

    from django.core.management.base import CommandError

    out = StringIO()
    call_command("secretariat_group", secretariat.email, stdout=out)
    call_command("secretariat_group", stdout=out)
    assert secretariat.groups.filter(name=SECRETARIAT_GROUP).count() == 1
    with pytest.raises(CommandError):
        call_command("secretariat_group", "nobody@example.jp", stdout=out)


def test_the_demo_secretariat_is_staff_in_the_group_not_a_superuser(client):
    from io import StringIO

    call_command("seed_demo", stdout=StringIO())
    desk = User.objects.get(email="secretariat@gpu-alliance.example")
    assert desk.is_staff and not desk.is_superuser
    assert desk.groups.filter(name=SECRETARIAT_GROUP).exists()
    assert not User.objects.filter(is_superuser=True).exists()
    client.force_login(desk)  # the demo account has its TOTP already
    assert client.get(reverse("admin:grants_program_changelist")).status_code == 200
    assert client.get(reverse("admin:organizations_membership_changelist")).status_code == 200
    assert client.get(reverse("grants:staff-programs")).status_code == 200
    # A demo database of before (superuser secretariat) is brought in line by running seed_demo again.
    User.objects.filter(pk=desk.pk).update(is_superuser=True)
    desk.groups.clear()
    call_command("seed_demo", stdout=StringIO())
    desk.refresh_from_db()
    assert not desk.is_superuser and desk.groups.filter(name=SECRETARIAT_GROUP).exists()


def test_secretariat_staff_run_admin_actions_and_edits_are_audited(client, secretariat):
    from apps.governance.models import AuditEvent

    org = OrganizationFactory()
    _login(client, secretariat)
    url = reverse("admin:organizations_membership_changelist")
    client.post(url, {"action": "suspend", "_selected_action": [org.membership.pk]})
    org.membership.refresh_from_db()
    assert org.membership.status == "suspended"
    assert AuditEvent.objects.filter(action="membership.suspended", actor=secretariat).exists()
