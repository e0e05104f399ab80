import pytest
from django.core import mail
from django.db import IntegrityError

from apps.core.exceptions import ApplicationError
from apps.governance.models import AuditEvent
from apps.governance.services import audit_chain_verify
from apps.organizations import services
from apps.organizations.models import (
    ApplicationTransition,
    Membership,
    MembershipApplication,
    Organization,
    OrgRole,
)
from tests.factories import (
    ApplicationFactory,
    OrganizationFactory,
    ProviderFactory,
    StaffFactory,
    UserFactory,
    valid_corporate_number,
)

pytestmark = pytest.mark.django_db
S = MembershipApplication.Status


def _data(**overrides):
    data = {
        "name_ja": "株式会社サンプル",
        "name_en": "Sample KK",
        "kind": "startup",
        "corporate_number": valid_corporate_number(424242),
        "postal_code": "100-0001",
        "address": "東京都千代田区",
        "website": "https://sample.example.jp/",
        "home_provider": ProviderFactory(slug="sakura"),
        "requested_tier": "regular",
        "contact_name": "見本 花子",
        "contact_email": "hanako@sample.example.jp",
        "contact_phone": "",
        "technical_contact_email": "",
        "intended_use": "推論サービス",
    }
    data.update(overrides)
    return data


def _at(status, **kwargs):
    return ApplicationFactory(status=status, **kwargs)


# --- the happy path -----------------------------------------------------------------------------


def test_the_whole_workflow_ends_in_an_organization_with_membership_and_owner(terms):
    applicant, staff = UserFactory(), StaffFactory()
    application = services.application_create(applicant=applicant, data=_data())
    assert application.status == S.DRAFT

    services.application_submit(application_id=application.pk, actor=applicant, accept_terms=True)
    application.refresh_from_db()
    assert application.status == S.SUBMITTED
    assert application.accepted_terms == terms and application.terms_accepted_at

    services.application_start_review(application_id=application.pk, reviewer=staff)
    org = services.application_approve(application_id=application.pk, reviewer=staff, tier="associate")

    application.refresh_from_db()
    assert application.status == S.APPROVED and application.organization == org
    assert org.name_ja == "株式会社サンプル" and org.kind == "startup"
    assert org.membership.tier == "associate" and org.membership.status == Membership.Status.ACTIVE
    assert OrgRole.objects.filter(organization=org, user=applicant, role="owner").exists()
    assert [t.to_status for t in application.transitions.all()] == [
        S.DRAFT,
        S.SUBMITTED,
        S.UNDER_REVIEW,
        S.APPROVED,
    ]
    assert audit_chain_verify().ok


def test_changes_requested_then_resubmitted_then_approved(terms):
    applicant, staff = UserFactory(), StaffFactory()
    application = services.application_create(applicant=applicant, data=_data())
    services.application_submit(application_id=application.pk, actor=applicant, accept_terms=True)
    services.application_start_review(application_id=application.pk, reviewer=staff)
    services.application_request_changes(
        application_id=application.pk, reviewer=staff, reason="住所を補足してください"
    )
    services.application_update(
        application_id=application.pk, actor=applicant, data={"address": "東京都千代田区1-1-1"}
    )
    services.application_submit(application_id=application.pk, actor=applicant, accept_terms=True)
    services.application_start_review(application_id=application.pk, reviewer=staff)
    services.application_approve(application_id=application.pk, reviewer=staff)
    application.refresh_from_db()
    assert application.status == S.APPROVED
    assert application.organization.address == "東京都千代田区1-1-1"
    reasons = list(application.transitions.values_list("reason", flat=True))
    assert "住所を補足してください" in reasons


def test_each_step_sends_an_email_in_the_applicants_language(terms, django_capture_on_commit_callbacks):
    applicant, staff = UserFactory(language="en"), StaffFactory()
    application = services.application_create(applicant=applicant, data=_data())
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.application_submit(application_id=application.pk, actor=applicant, accept_terms=True)
    # the applicant's receipt and the secretariat's notice
    assert {tuple(m.to) for m in mail.outbox} == {(applicant.email,), ("secretariat@gpu-alliance.example",)}
    assert "received" in mail.outbox[0].subject
    with django_capture_on_commit_callbacks(execute=True):
        services.application_start_review(application_id=application.pk, reviewer=staff)
        services.application_reject(application_id=application.pk, reviewer=staff, reason="Out of scope")
    assert len(mail.outbox) == 4
    assert "Out of scope" in mail.outbox[-1].body and mail.outbox[-1].to == [applicant.email]


def test_emails_are_sent_only_after_commit(terms, django_capture_on_commit_callbacks):
    applicant = UserFactory()
    application = services.application_create(applicant=applicant, data=_data())
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.application_submit(application_id=application.pk, actor=applicant, accept_terms=True)
    assert mail.outbox == [] and len(callbacks) == 1


# --- refusals ----------------------------------------------------------------------------------

REFUSED = [
    # (service, from status)
    ("start_review", S.DRAFT),
    ("start_review", S.UNDER_REVIEW),
    ("start_review", S.CHANGES_REQUESTED),
    ("start_review", S.APPROVED),
    ("start_review", S.REJECTED),
    ("start_review", S.WITHDRAWN),
    ("approve", S.DRAFT),
    ("approve", S.SUBMITTED),
    ("approve", S.CHANGES_REQUESTED),
    ("approve", S.APPROVED),
    ("approve", S.REJECTED),
    ("approve", S.WITHDRAWN),
    ("reject", S.DRAFT),
    ("reject", S.SUBMITTED),
    ("reject", S.APPROVED),
    ("reject", S.WITHDRAWN),
    ("reject", S.REJECTED),
    ("reject", S.CHANGES_REQUESTED),
    ("request_changes", S.SUBMITTED),
    ("request_changes", S.APPROVED),
    ("request_changes", S.DRAFT),
    ("submit", S.SUBMITTED),
    ("submit", S.UNDER_REVIEW),
    ("submit", S.APPROVED),
    ("submit", S.REJECTED),
    ("submit", S.WITHDRAWN),
    ("withdraw", S.APPROVED),
    ("withdraw", S.REJECTED),
    ("withdraw", S.WITHDRAWN),
    ("update", S.SUBMITTED),
    ("update", S.UNDER_REVIEW),
    ("update", S.APPROVED),
    ("update", S.REJECTED),
    ("update", S.WITHDRAWN),
]


@pytest.mark.parametrize(("action", "status"), REFUSED)
def test_refused_transitions_change_nothing(terms, action, status):
    application = _at(status)
    staff = StaffFactory()
    applicant = application.applicant
    calls = {
        "start_review": lambda: services.application_start_review(
            application_id=application.pk, reviewer=staff
        ),
        "approve": lambda: services.application_approve(application_id=application.pk, reviewer=staff),
        "reject": lambda: services.application_reject(
            application_id=application.pk, reviewer=staff, reason="x"
        ),
        "request_changes": lambda: services.application_request_changes(
            application_id=application.pk, reviewer=staff, reason="x"
        ),
        "submit": lambda: services.application_submit(
            application_id=application.pk, actor=applicant, accept_terms=True
        ),
        "withdraw": lambda: services.application_withdraw(application_id=application.pk, actor=applicant),
        "update": lambda: services.application_update(
            application_id=application.pk, actor=applicant, data={"name_ja": "変更"}
        ),
    }
    events_before = AuditEvent.objects.count()
    with pytest.raises(ApplicationError):
        calls[action]()
    application.refresh_from_db()
    assert application.status == status and application.name_ja != "変更"
    assert AuditEvent.objects.count() == events_before
    assert not Organization.objects.exists()


@pytest.mark.parametrize("status", [S.DRAFT, S.SUBMITTED, S.UNDER_REVIEW, S.CHANGES_REQUESTED])
def test_applicant_can_withdraw_until_decided(status):
    application = _at(status)
    services.application_withdraw(application_id=application.pk, actor=application.applicant, reason="予算")
    application.refresh_from_db()
    assert application.status == S.WITHDRAWN


def test_only_the_applicant_can_edit_submit_or_withdraw(terms):
    application = _at(S.DRAFT)
    other = UserFactory()
    for call in (
        lambda: services.application_update(
            application_id=application.pk, actor=other, data={"name_ja": "x"}
        ),
        lambda: services.application_submit(application_id=application.pk, actor=other, accept_terms=True),
        lambda: services.application_withdraw(application_id=application.pk, actor=other),
    ):
        with pytest.raises(ApplicationError) as exc:
            call()
        assert exc.value.code == "forbidden"


def test_a_plain_member_cannot_review(terms):
    application = _at(S.SUBMITTED)
    member = OrganizationFactory().roles.create(user=UserFactory(), role="admin").user
    with pytest.raises(ApplicationError) as exc:
        services.application_start_review(application_id=application.pk, reviewer=member)
    assert exc.value.code == "forbidden"
    application.status = S.UNDER_REVIEW
    application.save()
    with pytest.raises(ApplicationError):
        services.application_approve(application_id=application.pk, reviewer=member)
    assert not Organization.objects.filter(name_ja=application.name_ja).exists()


@pytest.mark.parametrize("service", ["application_reject", "application_request_changes"])
def test_reject_and_request_changes_need_a_reason(service):
    application = _at(S.UNDER_REVIEW)
    with pytest.raises(ApplicationError) as exc:
        getattr(services, service)(application_id=application.pk, reviewer=StaffFactory(), reason="  ")
    assert exc.value.code == "reason_required"


def test_submit_requires_accepting_the_terms(terms):
    application = _at(S.DRAFT)
    with pytest.raises(ApplicationError) as exc:
        services.application_submit(
            application_id=application.pk, actor=application.applicant, accept_terms=False
        )
    assert exc.value.code == "terms"


def test_submit_is_refused_while_no_terms_are_published():
    application = _at(S.DRAFT)
    with pytest.raises(ApplicationError) as exc:
        services.application_submit(
            application_id=application.pk, actor=application.applicant, accept_terms=True
        )
    assert exc.value.code == "terms"


def test_application_records_the_version_of_the_terms_in_force(terms):
    from tests.factories import TermsFactory

    newer = TermsFactory(version="9.0", effective_from=terms.effective_from)
    TermsFactory(version="10.0", is_published=False)
    application = _at(S.DRAFT)
    services.application_submit(application_id=application.pk, actor=application.applicant, accept_terms=True)
    application.refresh_from_db()
    assert application.accepted_terms == newer


def test_companies_must_give_a_corporate_number(terms):
    application = _at(S.DRAFT, corporate_number="")
    with pytest.raises(ApplicationError) as exc:
        services.application_submit(
            application_id=application.pk, actor=application.applicant, accept_terms=True
        )
    assert exc.value.code == "corporate_number_required"


def test_universities_may_apply_without_a_corporate_number(terms):
    application = _at(S.DRAFT, corporate_number="", kind="academic")
    services.application_submit(application_id=application.pk, actor=application.applicant, accept_terms=True)
    services.application_start_review(application_id=application.pk, reviewer=StaffFactory())
    org = services.application_approve(application_id=application.pk, reviewer=StaffFactory())
    assert org.corporate_number is None


# --- duplicates --------------------------------------------------------------------------------


def test_duplicate_of_an_existing_member_is_refused_with_a_clear_message(terms):
    org = OrganizationFactory()
    application = _at(S.DRAFT, corporate_number=org.corporate_number)
    with pytest.raises(ApplicationError) as exc:
        services.application_submit(
            application_id=application.pk, actor=application.applicant, accept_terms=True
        )
    assert exc.value.code == "duplicate_corporate_number"
    assert org.corporate_number in str(exc.value)


def test_duplicate_of_an_application_in_review_is_refused(terms):
    first = _at(S.UNDER_REVIEW)
    second = _at(S.DRAFT, corporate_number=first.corporate_number)
    with pytest.raises(ApplicationError) as exc:
        services.application_submit(application_id=second.pk, actor=second.applicant, accept_terms=True)
    assert exc.value.code == "duplicate_corporate_number"


def test_a_rejected_or_withdrawn_application_does_not_block_a_new_one(terms):
    old = _at(S.REJECTED)
    _at(S.WITHDRAWN, corporate_number=old.corporate_number)
    new = _at(S.DRAFT, corporate_number=old.corporate_number)
    services.application_submit(application_id=new.pk, actor=new.applicant, accept_terms=True)
    new.refresh_from_db()
    assert new.status == S.SUBMITTED


def test_the_database_refuses_two_open_applications_for_one_number():
    first = _at(S.SUBMITTED)
    with pytest.raises(IntegrityError):
        _at(S.SUBMITTED, corporate_number=first.corporate_number)


# --- atomic approval ---------------------------------------------------------------------------


def test_approval_is_all_or_nothing(terms, monkeypatch):
    application = _at(S.UNDER_REVIEW)
    staff = StaffFactory()
    real = services.audit_record

    def failing_audit(**kwargs):
        if kwargs["action"] == "org_role.granted":
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(services, "audit_record", failing_audit)
    events = AuditEvent.objects.count()
    with pytest.raises(RuntimeError):
        services.application_approve(application_id=application.pk, reviewer=staff)
    application.refresh_from_db()
    assert application.status == S.UNDER_REVIEW and application.organization is None
    assert (
        not Organization.objects.exists() and not Membership.objects.exists() and not OrgRole.objects.exists()
    )
    assert AuditEvent.objects.count() == events
    assert ApplicationTransition.objects.filter(application=application).count() == 0


def test_every_state_change_leaves_an_audit_event(terms):
    applicant, staff = UserFactory(), StaffFactory()
    application = services.application_create(applicant=applicant, data=_data())
    services.application_submit(application_id=application.pk, actor=applicant, accept_terms=True)
    services.application_start_review(application_id=application.pk, reviewer=staff)
    org = services.application_approve(application_id=application.pk, reviewer=staff)
    services.membership_set_status(
        membership_id=org.membership.pk, actor=staff, status="suspended", reason="未払い"
    )
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions == [
        "application.created",
        "application.submitted",
        "application.review_started",
        "organization.created",
        "membership.started",
        "org_role.granted",
        "application.approved",
        "membership.suspended",
    ]
    suspended = AuditEvent.objects.get(action="membership.suspended")
    assert suspended.before["status"] == "active" and suspended.after["status"] == "suspended"
    assert suspended.actor == staff


def test_suspending_needs_a_reason_and_staff():
    org = OrganizationFactory()
    with pytest.raises(ApplicationError):
        services.membership_set_status(
            membership_id=org.membership.pk, actor=StaffFactory(), status="suspended"
        )
    with pytest.raises(ApplicationError):
        services.membership_set_status(
            membership_id=org.membership.pk, actor=UserFactory(), status="suspended", reason="x"
        )
    org.membership.refresh_from_db()
    assert org.membership.status == "active"


def test_the_last_owner_cannot_be_removed():
    org = OrganizationFactory()
    owner = org.roles.create(user=UserFactory(), role="owner")
    with pytest.raises(ApplicationError) as exc:
        services.org_role_remove(role_id=owner.pk, actor=owner.user)
    assert exc.value.code == "last_owner"
