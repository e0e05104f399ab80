import pytest
from django.urls import reverse

from apps.organizations.models import MembershipApplication, Organization
from tests.factories import (
    ApplicationFactory,
    OrganizationFactory,
    OrgRoleFactory,
    ProviderFactory,
    UserFactory,
    valid_corporate_number,
)

pytestmark = pytest.mark.django_db
S = MembershipApplication.Status


# --- public pages ------------------------------------------------------------------------------


def test_home_and_conditions_render_in_japanese_by_default(client, terms):
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "参加条件" in response.content.decode()
    response = client.get(reverse("organizations:terms"))
    assert response.status_code == 200 and terms.body_ja in response.content.decode()


def test_older_versions_of_the_conditions_stay_readable(client, terms):
    from tests.factories import TermsFactory

    TermsFactory(version="2.0", body_ja="新しい条文")
    response = client.get(reverse("organizations:terms-version", args=[terms.version]))
    assert response.status_code == 200 and terms.body_ja in response.content.decode()
    assert client.get(reverse("organizations:terms")).content.decode().count("新しい条文") == 1
    assert client.get(reverse("organizations:terms-version", args=["99"])).status_code == 404


def test_english_is_served_when_chosen(client):
    client.cookies["django_language"] = "en"
    response = client.get(reverse("organizations:directory"))
    assert "Member directory" in response.content.decode()


def test_directory_shows_only_listed_active_members_and_what_they_made_public(client):
    shown = OrganizationFactory(name_en="Shown KK", show_website=False, website="https://secret.example.jp/")
    OrganizationFactory(name_en="Hidden KK", is_listed=False)
    OrganizationFactory(name_en="Suspended KK", membership__status="suspended")
    body = client.get(reverse("organizations:directory")).content.decode()
    assert shown.name_ja in body
    assert "Hidden" not in body and "Suspended" not in body
    assert "secret.example.jp" not in body
    assert shown.corporate_number not in body


def test_directory_filters_and_htmx_partial(client):
    OrganizationFactory(name_ja="医療AI株式会社", kind="startup")
    OrganizationFactory(name_ja="製造株式会社", kind="enterprise")
    response = client.get(reverse("organizations:directory"), {"kind": "startup"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "医療AI株式会社" in body and "製造株式会社" not in body
    assert "<html" not in body  # only the partial
    assert "HX-Request" in response["Vary"]


def test_unlisted_organization_page_is_404_to_outsiders_but_visible_to_its_members(client):
    org = OrganizationFactory(is_listed=False)
    url = reverse("organizations:org-detail", args=[org.slug])
    assert client.get(url).status_code == 404
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    member = OrgRoleFactory(organization=org, role="member").user
    client.force_login(member)
    assert client.get(url).status_code == 200


def test_public_page_hides_private_parts_from_outsiders(client):
    org = OrganizationFactory(show_address=False, address="秘密の住所")
    owner = OrgRoleFactory(organization=org, role="owner").user
    url = reverse("organizations:org-detail", args=[org.slug])
    body = client.get(url).content.decode()
    assert "秘密の住所" not in body and owner.email not in body and org.corporate_number not in body
    client.force_login(owner)
    body = client.get(url).content.decode()
    assert "秘密の住所" in body and org.corporate_number in body


# --- private organization pages ----------------------------------------------------------------


def test_manage_page_requires_login(client):
    org = OrganizationFactory()
    response = client.get(reverse("organizations:org-manage", args=[org.slug]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("name", ["organizations:org-manage", "organizations:org-profile"])
def test_outsider_gets_404_on_private_pages(client, name):
    org = OrganizationFactory()
    OrgRoleFactory(role="owner")  # owner of another organization
    client.force_login(UserFactory())
    assert client.get(reverse(name, args=[org.slug])).status_code == 404


def test_outsider_gets_404_when_posting_invitations_or_revocations(client):
    org = OrganizationFactory()
    owner = OrgRoleFactory(organization=org, role="owner").user
    from apps.organizations import services

    invitation, _ = services.invitation_create(
        organization_id=org.pk, inviter=owner, email="x@example.jp", role="member"
    )
    client.force_login(UserFactory())
    assert (
        client.post(
            reverse("organizations:org-manage", args=[org.slug]), {"email": "y@example.jp", "role": "admin"}
        ).status_code
        == 404
    )
    assert (
        client.post(reverse("organizations:invitation-revoke", args=[org.slug, invitation.pk])).status_code
        == 404
    )
    invitation.refresh_from_db()
    assert invitation.revoked_at is None and org.invitations.count() == 1


def test_plain_member_sees_people_but_cannot_invite(client):
    org = OrganizationFactory()
    member = OrgRoleFactory(organization=org, role="member").user
    client.force_login(member)
    url = reverse("organizations:org-manage", args=[org.slug])
    response = client.get(url)
    assert response.status_code == 200 and "招待を送る" not in response.content.decode()
    assert client.post(url, {"email": "y@example.jp", "role": "admin"}).status_code == 404
    assert client.get(reverse("organizations:org-profile", args=[org.slug])).status_code == 404


def test_admin_invites_and_sees_form_errors(client, mailoutbox, django_capture_on_commit_callbacks):
    org = OrganizationFactory()
    admin_user = OrgRoleFactory(organization=org, role="admin").user
    client.force_login(admin_user)
    url = reverse("organizations:org-manage", args=[org.slug])
    response = client.post(url, {"email": "not-an-email", "role": "member"})
    assert response.status_code == 200 and org.invitations.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"email": "New@Example.jp", "role": "billing"})
    assert response.status_code == 302
    invitation = org.invitations.get()
    assert invitation.email == "new@example.jp" and invitation.role == "billing"
    assert mailoutbox[-1].to == ["new@example.jp"]
    response = client.post(url, {"email": "new@example.jp", "role": "member"})
    assert "pending invitation" in response.content.decode() or "保留中" in response.content.decode()


def test_owner_edits_the_public_profile(client):
    org = OrganizationFactory(is_listed=True)
    owner = OrgRoleFactory(organization=org, role="owner").user
    client.force_login(owner)
    data = {
        "name_ja": org.name_ja,
        "name_en": org.name_en,
        "postal_code": "",
        "address": org.address,
        "website": org.website,
        "show_website": "on",
        "description_ja": "説明",
        "description_en": "About",
    }
    response = client.post(reverse("organizations:org-profile", args=[org.slug]), data)
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.is_listed is False and org.description_ja == "説明"


# --- applications -------------------------------------------------------------------------------


def _form(**overrides):
    data = {
        "name_ja": "株式会社ウェブ申請",
        "name_en": "Web Apply KK",
        "kind": "startup",
        "corporate_number": valid_corporate_number(777),
        "postal_code": "100-0001",
        "address": "東京都千代田区",
        "website": "",
        "home_provider": ProviderFactory(slug="kddi").pk,
        "requested_tier": "regular",
        "contact_name": "申請 次郎",
        "contact_email": "jiro@example.jp",
        "contact_phone": "",
        "technical_contact_email": "",
        "intended_use": "学習",
    }
    data.update(overrides)
    return data


def test_applicant_creates_a_draft_and_submits_it(client, terms):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("organizations:application-new"), _form())
    application = MembershipApplication.objects.get()
    assert response.status_code == 302 and application.status == S.DRAFT
    url = reverse("organizations:application-detail", args=[application.pk])
    response = client.post(url, {})
    assert response.status_code == 400
    application.refresh_from_db()
    assert application.status == S.DRAFT
    response = client.post(url, {"accept_terms": "on"})
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.status == S.SUBMITTED and application.accepted_terms == terms


def test_bad_corporate_number_is_a_form_error(client):
    client.force_login(UserFactory())
    response = client.post(reverse("organizations:application-new"), _form(corporate_number="1234567890123"))
    assert response.status_code == 200
    assert "corporate_number" in response.context["form"].errors
    assert not MembershipApplication.objects.exists()


def test_full_width_digits_and_hyphens_are_accepted(client):
    client.force_login(UserFactory())
    number = valid_corporate_number(31337)
    wide = number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    client.post(
        reverse("organizations:application-new"), _form(corporate_number=f"{wide[:1]}-{wide[1:5]}-{wide[5:]}")
    )
    assert MembershipApplication.objects.get().corporate_number == number


def test_applicant_cannot_edit_after_submission(client):
    application = ApplicationFactory(status=S.SUBMITTED)
    client.force_login(application.applicant)
    response = client.post(
        reverse("organizations:application-edit", args=[application.pk]), _form(name_ja="改ざん")
    )
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.name_ja != "改ざん"


def test_other_users_application_is_404(client):
    application = ApplicationFactory()
    client.force_login(UserFactory())
    for name in ("organizations:application-detail", "organizations:application-edit"):
        assert client.get(reverse(name, args=[application.pk])).status_code == 404
    assert (
        client.post(reverse("organizations:application-withdraw", args=[application.pk])).status_code == 404
    )


# --- secretariat -----------------------------------------------------------------------------


def test_review_queue_is_404_for_members(client):
    org_admin = OrgRoleFactory(role="owner").user
    client.force_login(org_admin)
    assert client.get(reverse("organizations:review-queue")).status_code == 404
    application = ApplicationFactory(status=S.UNDER_REVIEW)
    response = client.post(
        reverse("organizations:review-decide", args=[application.pk]), {"decision": "approve"}
    )
    assert response.status_code == 404
    application.refresh_from_db()
    assert application.status == S.UNDER_REVIEW


def test_staff_without_totp_is_sent_to_set_it_up(client, staff):
    client.force_login(staff)
    response = client.get(reverse("organizations:review-queue"))
    assert response.status_code == 302 and "/accounts/2fa/totp/activate" in response["Location"]
    assert client.get(reverse("admin:index")).status_code == 302


def test_review_queue_filters_with_htmx(staff_client):
    ApplicationFactory(status=S.SUBMITTED, name_ja="北斗データ")
    ApplicationFactory(status=S.UNDER_REVIEW, name_ja="南十字")
    ApplicationFactory(status=S.DRAFT, name_ja="下書き中")
    response = staff_client.get(reverse("organizations:review-queue"))
    body = response.content.decode()
    assert "北斗データ" in body and "南十字" in body and "下書き中" not in body
    response = staff_client.get(reverse("organizations:review-queue"), {"q": "北斗"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "北斗データ" in body and "南十字" not in body and "<html" not in body


def test_staff_approves_inline_with_htmx(staff_client, terms):
    application = ApplicationFactory(status=S.UNDER_REVIEW)
    response = staff_client.post(
        reverse("organizations:review-decide", args=[application.pk]),
        {"decision": "approve", "reason": "", "tier": ""},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith("<tr") and "承認" in body
    application.refresh_from_db()
    assert application.status == S.APPROVED
    assert Organization.objects.filter(pk=application.organization_id).exists()


def test_reject_without_reason_is_refused_inline(staff_client):
    application = ApplicationFactory(status=S.UNDER_REVIEW)
    response = staff_client.post(
        reverse("organizations:review-decide", args=[application.pk]),
        {"decision": "reject", "reason": ""},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    application.refresh_from_db()
    assert application.status == S.UNDER_REVIEW


def test_wrong_transition_shows_a_message_not_a_500(staff_client):
    application = ApplicationFactory(status=S.SUBMITTED)
    response = staff_client.post(
        reverse("organizations:review-decide", args=[application.pk]),
        {"decision": "approve"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "row-error" in response.content.decode()
    response = staff_client.post(
        reverse("organizations:review-decide", args=[application.pk]), {"decision": "nope"}
    )
    assert response.status_code == 302


def test_review_of_unknown_application_is_404(staff_client):
    assert staff_client.get(reverse("organizations:review-detail", args=[999999])).status_code == 404
    assert staff_client.post(reverse("organizations:review-start", args=[999999])).status_code == 404


def test_dashboard_lists_organizations_applications_and_invitations(client):
    user = UserFactory()
    org = OrganizationFactory(name_ja="ダッシュ株式会社")
    OrgRoleFactory(organization=org, user=user, role="owner")
    ApplicationFactory(applicant=user, name_ja="別の申請", status=S.CHANGES_REQUESTED)
    client.force_login(user)
    body = client.get(reverse("dashboard")).content.decode()
    assert "ダッシュ株式会社" in body and "別の申請" in body and "修正依頼" in body


def test_japanese_first_whatever_the_browser_asks(client):
    body = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert "参加条件" in body


def test_account_language_applies_when_no_choice_was_made(client):
    client.force_login(UserFactory(language="en"))
    assert "Your organizations" in client.get(reverse("dashboard")).content.decode()


def test_dashboard_counts_all_people_of_each_organization(client):
    user = UserFactory()
    org = OrganizationFactory()
    OrgRoleFactory(organization=org, user=user, role="owner")
    OrgRoleFactory(organization=org, user=user, role="billing")
    OrgRoleFactory.create_batch(2, organization=org, role="member")
    client.force_login(user)
    organizations = list(client.get(reverse("dashboard")).context["organizations"])
    assert organizations[0].people_count == 3
    assert sorted(r.role for r in organizations[0].my_roles) == ["billing", "owner"]
