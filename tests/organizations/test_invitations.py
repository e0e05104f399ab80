from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.organizations import services
from apps.organizations.models import Invitation, OrgRole
from tests.factories import OrganizationFactory, OrgRoleFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def org_admin():
    return OrgRoleFactory(role="admin")


def _invite(org_admin, email="invitee@example.jp", role="member"):
    return services.invitation_create(
        organization_id=org_admin.organization_id, inviter=org_admin.user, email=email, role=role
    )


def test_invitation_mail_carries_a_link_whose_token_is_not_stored(
    org_admin, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, token = _invite(org_admin)
    assert token not in invitation.token_hash
    assert invitation.token_hash == Invitation.hash_token(token)
    assert mailoutbox[-1].to == ["invitee@example.jp"]
    assert reverse("organizations:invitation-accept", args=[token]) in mailoutbox[-1].body


def test_existing_account_accepts_and_gets_the_role(org_admin):
    user = UserFactory(email="invitee@example.jp")
    _invitation, token = _invite(org_admin, role="technical")
    services.invitation_accept(token=token, user=user)
    assert OrgRole.objects.filter(organization=org_admin.organization, user=user, role="technical").exists()


def test_new_account_signs_up_then_accepts(client, org_admin, mailoutbox):
    _invitation, token = _invite(org_admin, email="newcomer@example.jp")
    url = reverse("organizations:invitation-accept", args=[token])
    assert client.get(url).status_code == 200
    response = client.post(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    # sign up with the invited address; verification is mandatory
    client.post(
        reverse("account_signup"),
        {
            "email": "newcomer@example.jp",
            "password1": "a-Long-passw0rd!",
            "password2": "a-Long-passw0rd!",
            "full_name": "新人 太郎",
            "language": "ja",
        },
    )
    from allauth.account.models import EmailAddress, EmailConfirmationHMAC

    address = EmailAddress.objects.get(email="newcomer@example.jp")
    client.post(reverse("account_confirm_email", args=[EmailConfirmationHMAC(address).key]))
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert OrgRole.objects.filter(
        user__email="newcomer@example.jp", organization=org_admin.organization
    ).exists()


def test_an_expired_invitation_is_refused(org_admin):
    invitation, token = _invite(org_admin)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ApplicationError) as exc:
        services.invitation_accept(token=token, user=UserFactory(email="invitee@example.jp"))
    assert exc.value.code == "expired"
    assert not OrgRole.objects.filter(user__email="invitee@example.jp").exists()


def test_an_invitation_cannot_be_used_twice(org_admin):
    _invitation, token = _invite(org_admin)
    user = UserFactory(email="invitee@example.jp")
    services.invitation_accept(token=token, user=user)
    with pytest.raises(ApplicationError) as exc:
        services.invitation_accept(token=token, user=user)
    assert exc.value.code == "used"


def test_the_link_works_only_for_the_invited_address(org_admin):
    _invitation, token = _invite(org_admin)
    intruder = UserFactory(email="intruder@example.jp")
    with pytest.raises(ApplicationError) as exc:
        services.invitation_accept(token=token, user=intruder)
    assert exc.value.code == "wrong_account"
    assert not OrgRole.objects.filter(user=intruder).exists()


def test_a_revoked_invitation_is_refused(org_admin):
    invitation, token = _invite(org_admin)
    services.invitation_revoke(invitation_id=invitation.pk, actor=org_admin.user)
    with pytest.raises(ApplicationError) as exc:
        services.invitation_accept(token=token, user=UserFactory(email="invitee@example.jp"))
    assert exc.value.code == "revoked"


def test_unknown_token_is_404_and_refusals_are_400_pages(client, org_admin):
    assert client.get(reverse("organizations:invitation-accept", args=["nope"])).status_code == 404
    invitation, token = _invite(org_admin)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(days=1))
    client.force_login(UserFactory(email="invitee@example.jp"))
    response = client.post(reverse("organizations:invitation-accept", args=[token]))
    assert response.status_code == 400 and "有効期限" in response.content.decode()


@pytest.mark.parametrize("role", ["member", "billing", "technical"])
def test_plain_members_cannot_invite(role):
    member = OrgRoleFactory(role=role)
    with pytest.raises(ApplicationError) as exc:
        services.invitation_create(
            organization_id=member.organization_id, inviter=member.user, email="x@example.jp", role="member"
        )
    assert exc.value.code == "forbidden"


def test_ownership_cannot_be_given_by_invitation(org_admin):
    with pytest.raises(ApplicationError):
        _invite(org_admin, role="owner")


def test_a_second_pending_invitation_to_the_same_address_is_refused(org_admin):
    _invite(org_admin)
    with pytest.raises(ApplicationError) as exc:
        _invite(org_admin, email="INVITEE@example.jp", role="admin")
    assert exc.value.code == "duplicate"


def test_invitation_expires_after_the_configured_days(org_admin, settings):
    settings.INVITATION_TTL_DAYS = 3
    invitation, _ = _invite(org_admin)
    assert timedelta(days=2, hours=23) < invitation.expires_at - timezone.now() <= timedelta(days=3)


def test_outsider_cannot_revoke(org_admin):
    invitation, _ = _invite(org_admin)
    other_org_owner = OrgRoleFactory(organization=OrganizationFactory(), role="owner").user
    with pytest.raises(ApplicationError):
        services.invitation_revoke(invitation_id=invitation.pk, actor=other_org_owner)
