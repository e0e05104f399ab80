"""The program cycle through its services: eligibility, deadlines, reviews, decisions, awards, reports."""

import datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.governance.models import AuditEvent
from apps.governance.services import audit_chain_verify
from apps.grants import services
from apps.grants.models import Application, Assignment, Award, Report
from apps.organizations.models import Membership, Organization, OrgRole
from apps.providers.models import GrantOutbox, QuotaGrant
from tests.factories import (
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    UserFactory,
    valid_corporate_number,
)
from tests.grants.factories import (
    AcademicProgramFactory,
    ApplicationFactory,
    CallFactory,
    QuestionFactory,
    ReviewerFactory,
)

pytestmark = pytest.mark.django_db
S = Application.Status


def _submit(application, **kwargs):
    return services.application_submit(application_id=application.pk, actor=application.applicant, **kwargs)


def _refusal(fn, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as exc:
        fn(**kwargs)
    return exc.value


# --- eligibility ---------------------------------------------------------------------------------


def test_an_eligible_startup_submits_and_is_told_by_mail(django_capture_on_commit_callbacks):
    application = ApplicationFactory()
    with django_capture_on_commit_callbacks(execute=True):
        _submit(application)
    application.refresh_from_db()
    assert application.status == S.SUBMITTED and application.submitted_at is not None
    assert AuditEvent.objects.filter(
        action="grant_application.submitted", target_id=str(application.pk)
    ).exists()
    assert {m.to[0] for m in mail.outbox} == {application.applicant.email, "secretariat@gpu-alliance.example"}


def test_an_enterprise_is_refused_by_a_startup_program_with_the_reason():
    application = ApplicationFactory(organization=OrganizationFactory(kind="enterprise"))
    error = _refusal(_submit, application=application)
    assert error.code == "ineligible"
    assert "このプログラムの対象は スタートアップ ですが" in error.message and "企業" in error.message
    application.refresh_from_db()
    assert application.status == S.DRAFT


def test_a_company_older_than_the_program_allows_is_refused():
    today = timezone.localdate()
    application = ApplicationFactory(founded_on=today.replace(year=today.year - 6))
    error = _refusal(_submit, application=application)
    assert "5" in error.message and application.founded_on.isoformat() in error.message


def test_a_company_exactly_at_the_age_limit_is_eligible():
    today = timezone.localdate()
    application = ApplicationFactory(founded_on=today.replace(year=today.year - 5, day=min(today.day, 28)))
    if application.founded_on < services._years_before(today, 5):
        application.founded_on = services._years_before(today, 5)
        application.save()
    _submit(application)


def test_the_founding_date_is_required_when_the_program_limits_the_age():
    application = ApplicationFactory(founded_on=None)
    error = _refusal(_submit, application=application)
    assert error.extra["problems"]


def test_a_non_member_organization_is_refused_by_a_members_only_program():
    org = OrganizationFactory(kind="startup", membership=False)
    application = ApplicationFactory(organization=org)
    error = _refusal(_submit, application=application)
    assert "アライアンス会員のみが対象ですが" in error.message


def test_a_suspended_member_is_refused_by_a_members_only_program():
    org = OrganizationFactory(kind="startup", membership__status="suspended")
    error = _refusal(_submit, application=ApplicationFactory(organization=org))
    assert error.code == "ineligible"


def test_an_academic_program_accepts_a_university_that_is_not_a_member():
    call = CallFactory(program=AcademicProgramFactory())
    application = ApplicationFactory(
        call=call,
        organization=None,
        org_name_ja="北海道先端大学",
        org_name_en="Hokkaido Advanced University",
        org_kind="academic",
        founded_on=None,
    )
    _submit(application)
    application.refresh_from_db()
    assert application.status == S.SUBMITTED


def test_typed_organization_details_are_refused_by_a_members_only_program():
    application = ApplicationFactory(
        organization=None,
        org_name_ja="未加盟スタートアップ",
        org_kind="startup",
        org_corporate_number=valid_corporate_number(77),
    )
    error = _refusal(_submit, application=application)
    assert error.code == "ineligible"


def test_too_many_hours_too_long_and_unanswered_questions_are_all_reported():
    call = CallFactory()
    question = QuestionFactory(call=call)
    application = ApplicationFactory(call=call, requested_hours={"H200": 6000}, duration_months=12)
    error = _refusal(_submit, application=application)
    problems = error.extra["problems"]
    assert len(problems) == 3, problems
    assert any(question.label_ja in p or question.label_en in p for p in problems)


def test_nothing_requested_is_refused():
    error = _refusal(_submit, application=ApplicationFactory(requested_hours={}))
    assert error.code == "ineligible"


def test_applying_for_an_organization_one_does_not_belong_to_is_refused():
    call = CallFactory()
    stranger_org = OrganizationFactory(kind="startup")
    error = _refusal(
        services.application_create,
        call_id=call.pk,
        applicant=UserFactory(),
        data={"organization": stranger_org, "title": "x", "duration_months": 3},
    )
    assert error.code == "forbidden"


def test_requesting_a_class_without_budget_is_refused():
    call = CallFactory()
    user = UserFactory()
    org = OrganizationFactory(kind="startup")
    OrgRoleFactory(organization=org, user=user, role="owner")
    error = _refusal(
        services.application_create,
        call_id=call.pk,
        applicant=user,
        data={"organization": org, "requested_hours": {"GB200": 100}, "duration_months": 3},
    )
    assert error.code == "unknown_class"


# --- deadlines -----------------------------------------------------------------------------------


def test_closed_means_closed_to_the_second(freeze):
    application = ApplicationFactory()
    closes = application.call.closes_at
    freeze(closes)
    error = _refusal(_submit, application=application)
    assert error.code == "closed"
    freeze(closes - datetime.timedelta(seconds=1))
    _submit(application)
    application.refresh_from_db()
    assert application.status == S.SUBMITTED


def test_a_call_not_yet_open_refuses_drafts(freeze):
    call = CallFactory()
    freeze(call.opens_at - datetime.timedelta(seconds=1))
    user = UserFactory()
    error = _refusal(
        services.application_create, call_id=call.pk, applicant=user, data={"duration_months": 3}
    )
    assert error.code == "not_open"


def test_edits_and_attachments_only_before_the_deadline(freeze):
    application = ApplicationFactory()
    _submit(application)
    services.application_update(
        application_id=application.pk, actor=application.applicant, data={"title": "改訂版"}
    )
    freeze(application.call.closes_at + datetime.timedelta(seconds=5))
    error = _refusal(
        services.application_update,
        application_id=application.pk,
        actor=application.applicant,
        data={"title": "遅れ"},
    )
    assert error.code == "closed"
    upload = SimpleUploadedFile("plan.pdf", b"%PDF-1.7 test", content_type="application/pdf")
    error = _refusal(
        services.attachment_add,
        application_id=application.pk,
        actor=application.applicant,
        uploaded_file=upload,
    )
    assert error.code == "closed"
    application.refresh_from_db()
    assert application.title == "改訂版"


def test_an_edit_of_a_submitted_application_must_keep_it_eligible():
    application = ApplicationFactory()
    _submit(application)
    error = _refusal(
        services.application_update,
        application_id=application.pk,
        actor=application.applicant,
        data={"requested_hours": {"H200": 9000}},
    )
    assert error.code == "ineligible"
    application.refresh_from_db()
    assert application.requested_hours == {"H200": 1000}


def test_only_the_applicant_edits_submits_and_withdraws():
    application = ApplicationFactory()
    other = UserFactory()
    assert (
        _refusal(services.application_submit, application_id=application.pk, actor=other).code == "forbidden"
    )
    assert (
        _refusal(services.application_withdraw, application_id=application.pk, actor=other).code
        == "forbidden"
    )
    services.application_withdraw(application_id=application.pk, actor=application.applicant)
    application.refresh_from_db()
    assert application.status == S.WITHDRAWN
    assert _refusal(_submit, application=application).code == "bad_transition"


# --- attachments ---------------------------------------------------------------------------------


def test_attachments_are_checked_by_content_and_size(settings):
    application = ApplicationFactory()
    actor = application.applicant
    fake = SimpleUploadedFile("plan.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    add = services.attachment_add
    assert (
        _refusal(add, application_id=application.pk, actor=actor, uploaded_file=fake).code == "invalid_type"
    )
    exe = SimpleUploadedFile("tool.exe", b"MZ\x90\x00", content_type="application/octet-stream")
    assert _refusal(add, application_id=application.pk, actor=actor, uploaded_file=exe).code == "invalid_type"
    big = SimpleUploadedFile("big.txt", b"a" * (services.MAX_ATTACHMENT_BYTES + 1), content_type="text/plain")
    assert _refusal(add, application_id=application.pk, actor=actor, uploaded_file=big).code == "too_large"
    good = SimpleUploadedFile("計画書.pdf", b"%PDF-1.7 plan", content_type="application/pdf")
    attachment = add(application_id=application.pk, actor=actor, uploaded_file=good)
    assert attachment.original_name == "計画書.pdf" and attachment.content_type == "application/pdf"
    assert "計画書" not in attachment.file.name and attachment.file.name.startswith("grants/attachments/")
    assert attachment.file.read() == b"%PDF-1.7 plan"


# --- reviewers, conflicts and assignments --------------------------------------------------------


def _submitted(call=None, **kwargs):
    application = ApplicationFactory(call=call or CallFactory(), **kwargs)
    _submit(application)
    application.refresh_from_db()
    return application


def test_a_reviewer_from_the_applicant_organization_is_refused_automatically(actor):
    application = _submitted()
    colleague = UserFactory()
    OrgRoleFactory(organization=application.organization, user=colleague, role="member")
    services.reviewer_add(call_id=application.call_id, user=colleague, actor=actor)
    error = _refusal(
        services.assignment_create, application_id=application.pk, reviewer_user=colleague, actor=actor
    )
    assert error.code == "conflict"
    assert not Assignment.objects.exists()


def test_the_applicant_cannot_review_its_own_application(actor):
    application = _submitted()
    services.reviewer_add(call_id=application.call_id, user=application.applicant, actor=actor)
    error = _refusal(
        services.assignment_create,
        application_id=application.pk,
        reviewer_user=application.applicant,
        actor=actor,
    )
    assert error.code == "conflict"


def test_only_reviewers_of_the_call_can_be_assigned(actor):
    application = _submitted()
    error = _refusal(
        services.assignment_create, application_id=application.pk, reviewer_user=UserFactory(), actor=actor
    )
    assert error.code == "not_reviewer"


def test_a_declared_conflict_releases_the_assignment_for_good(actor, django_capture_on_commit_callbacks):
    application = _submitted()
    reviewer = ReviewerFactory(call=application.call).user
    assignment = services.assignment_create(
        application_id=application.pk, reviewer_user=reviewer, actor=actor
    )
    error = _refusal(
        services.assignment_declare_conflict, assignment_id=assignment.pk, actor=reviewer, reason=" "
    )
    assert error.code == "reason_required"
    with django_capture_on_commit_callbacks(execute=True):
        services.assignment_declare_conflict(
            assignment_id=assignment.pk, actor=reviewer, reason="共同研究者です"
        )
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.CONFLICT
    assert any("secretariat@" in m.to[0] for m in mail.outbox)
    error = _refusal(
        services.assignment_create, application_id=application.pk, reviewer_user=reviewer, actor=actor
    )
    assert error.code == "duplicate"
    error = _refusal(services.review_submit, assignment_id=assignment.pk, actor=reviewer, scores={})
    assert error.code == "bad_transition"


def test_automatic_assignment_is_balanced_deterministic_and_skips_conflicts(actor):
    call = CallFactory(reviews_per_application=2)
    applications = [_submitted(call) for _ in range(5)]
    reviewers = [ReviewerFactory(call=call).user for _ in range(3)]
    # The first reviewer works for the first applicant.
    OrgRoleFactory(organization=applications[0].organization, user=reviewers[0])
    result = services.assignments_auto(call_id=call.pk, actor=actor)
    assert result.created == 10 and result.short == []
    loads = [Assignment.objects.filter(reviewer=r).count() for r in reviewers]
    assert sorted(loads) == [3, 3, 4]
    assert not Assignment.objects.filter(application=applications[0], reviewer=reviewers[0]).exists()
    for application in applications:
        assert application.assignments.count() == 2
    plan = sorted(Assignment.objects.values_list("application_id", "reviewer_id"))
    # Running again adds nothing; the same data gives the same plan.
    assert services.assignments_auto(call_id=call.pk, actor=actor).created == 0
    assert sorted(Assignment.objects.values_list("application_id", "reviewer_id")) == plan


def test_automatic_assignment_replaces_a_released_review(actor):
    call = CallFactory(reviews_per_application=1)
    application = _submitted(call)
    first, second = (ReviewerFactory(call=call).user for _ in range(2))
    services.assignments_auto(call_id=call.pk, actor=actor)
    assignment = Assignment.objects.get()
    services.assignment_declare_conflict(
        assignment_id=assignment.pk, actor=assignment.reviewer, reason="利害関係"
    )
    services.assignments_auto(call_id=call.pk, actor=actor)
    live = application.assignments.filter(status__in=Assignment.ACTIVE)
    assert live.count() == 1 and live.get().reviewer != assignment.reviewer
    assert {first, second} == {assignment.reviewer, live.get().reviewer}


def test_automatic_assignment_reports_applications_short_of_reviewers(actor):
    call = CallFactory(reviews_per_application=3)
    application = _submitted(call)
    ReviewerFactory(call=call)
    result = services.assignments_auto(call_id=call.pk, actor=actor)
    assert result.created == 1 and result.short == [application.pk]


# --- scoring -------------------------------------------------------------------------------------


def _assigned(actor, application=None):
    application = application or _submitted()
    reviewer = ReviewerFactory(call=application.call).user
    return services.assignment_create(application_id=application.pk, reviewer_user=reviewer, actor=actor)


def test_a_review_scores_every_criterion_within_its_range(actor):
    assignment = _assigned(actor)
    novelty, feasibility = assignment.application.call.criteria.all()
    reviewer = assignment.reviewer
    submit = services.review_submit
    assert (
        _refusal(submit, assignment_id=assignment.pk, actor=reviewer, scores={novelty.pk: 4}).code
        == "invalid"
    )
    bad = {novelty.pk: 6, feasibility.pk: 3}
    assert _refusal(submit, assignment_id=assignment.pk, actor=reviewer, scores=bad).code == "invalid"
    other = UserFactory()
    good = {novelty.pk: (5, "新しい"), feasibility.pk: (3, "")}
    assert _refusal(submit, assignment_id=assignment.pk, actor=other, scores=good).code == "forbidden"
    submit(assignment_id=assignment.pk, actor=reviewer, scores=good, comment="良い提案")
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SUBMITTED
    assert {s.criterion_id: s.score for s in assignment.scores.all()} == {novelty.pk: 5, feasibility.pk: 3}
    # Revised before the decision: replaced, not added.
    submit(assignment_id=assignment.pk, actor=reviewer, scores={novelty.pk: 4, feasibility.pk: 4})
    assert assignment.scores.count() == 2


# --- awards --------------------------------------------------------------------------------------


def _award(application, period, hours="800", actor=None, **kwargs):
    today = timezone.localdate()
    return services.application_award(
        application_id=application.pk,
        actor=actor,
        lines=[(period.pk, hours)],
        valid_from=kwargs.pop("valid_from", today),
        valid_until=kwargs.pop("valid_until", services.add_months(today, 4)),
        **kwargs,
    )


def test_an_award_creates_time_limited_award_grants_and_reports(
    actor, period, django_capture_on_commit_callbacks
):
    application = _submitted()
    mentor = UserFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        award = _award(
            application, period, "800", actor=actor, mentor=mentor, feedback="おめでとうございます"
        )
    application.refresh_from_db()
    assert application.status == S.AWARDED and application.feedback == "おめでとうございます"
    grant = QuotaGrant.objects.get()
    assert grant.source == QuotaGrant.Source.AWARD and grant.source_ref == f"award-{award.pk}"
    assert grant.gpu_hours == Decimal("800.00") and grant.organization == application.organization
    assert (grant.valid_from, grant.valid_until) == (award.valid_from, award.valid_until)
    assert GrantOutbox.objects.filter(grant=grant, operation="apply").exists()
    assert award.lines.get().grant == grant
    assert list(award.reports.values_list("kind", flat=True)) == [Report.Kind.PROGRESS, Report.Kind.FINAL]
    assert award.reports.get(kind="final").due_on == award.valid_until + datetime.timedelta(days=30)
    assert callbacks  # e-mails and the push are enqueued after commit
    assert audit_chain_verify().ok
    assert AuditEvent.objects.filter(action="award.created").exists()


def test_an_award_may_be_less_but_never_more_than_requested(actor, period):
    application = _submitted()
    error = _refusal(_award, application=application, period=period, hours="1000.01", actor=actor)
    assert error.code == "more_than_requested"
    _award(application, period, "400", actor=actor)


def test_awards_over_the_call_budget_are_refused(actor, period):
    call = CallFactory(budget={"H200": 1500})
    first, second = _submitted(call), _submitted(call)
    _award(first, period, "1000", actor=actor)
    error = _refusal(_award, application=second, period=period, hours="600", actor=actor)
    assert error.code == "over_budget" and "500.00" in error.message
    second.refresh_from_db()
    assert second.status == S.SUBMITTED and QuotaGrant.objects.count() == 1
    _award(second, period, "500", actor=actor)


def test_a_revoked_award_frees_its_budget_and_revokes_its_grants(actor, period):
    call = CallFactory(budget={"H200": 1000})
    first, second = _submitted(call), _submitted(call)
    award = _award(first, period, "1000", actor=actor)
    assert _refusal(_award, application=second, period=period, hours="1", actor=actor).code == "over_budget"
    services.award_revoke(award_id=award.pk, actor=actor, reason="不正利用")
    assert QuotaGrant.objects.get().state == QuotaGrant.State.REVOKING
    _award(second, period, "1000", actor=actor)


def test_an_award_is_all_or_nothing_when_a_pool_lacks_capacity(actor, period):
    application = _submitted(requested_hours={"H200": 1000, "B200": 500})
    small = PoolPeriodFactory(
        pool__gpu_class="B200", starts_on=period.starts_on, ends_on=period.ends_on, capacity_gpu_hours="100"
    )
    today = timezone.localdate()
    error = _refusal(
        services.application_award,
        application_id=application.pk,
        actor=actor,
        lines=[(period.pk, "500"), (small.pk, "400")],
        valid_from=today,
        valid_until=services.add_months(today, 2),
    )
    assert error.code == "grant_refused"
    assert not QuotaGrant.objects.exists() and not Award.objects.exists()
    application.refresh_from_db()
    assert application.status == S.SUBMITTED


def test_an_award_longer_than_the_program_allows_is_refused(actor, period):
    application = _submitted()
    today = timezone.localdate()
    error = _refusal(
        _award,
        application=application,
        period=period,
        actor=actor,
        valid_from=today,
        valid_until=services.add_months(today, 7),
    )
    assert error.code == "too_long"


def test_an_award_to_a_non_member_creates_a_hidden_organization_owned_by_the_applicant(actor, period):
    call = CallFactory(program=AcademicProgramFactory())
    application = _submitted(
        call,
        organization=None,
        org_name_ja="北海道先端大学",
        org_name_en="Hokkaido Advanced University",
        org_kind="academic",
        founded_on=None,
    )
    _award(application, period, "1000", actor=actor)
    org = Organization.objects.get(name_en="Hokkaido Advanced University")
    assert not org.is_listed and not Membership.objects.filter(organization=org).exists()
    assert org.home_provider == period.pool.provider
    assert OrgRole.objects.filter(organization=org, user=application.applicant, role="owner").exists()
    application.refresh_from_db()
    assert application.organization == org
    assert QuotaGrant.objects.get().organization == org


def test_decline_needs_feedback_and_waitlisted_can_still_be_awarded(
    actor, period, django_capture_on_commit_callbacks
):
    first, second = _submitted(), _submitted()
    assert _refusal(services.application_decline, application_id=first.pk, actor=actor, feedback="").code == (
        "reason_required"
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.application_decline(application_id=first.pk, actor=actor, feedback="予算の都合です")
    assert any("予算の都合です" in m.body for m in mail.outbox)
    services.application_waitlist(application_id=second.pk, actor=actor)
    _award(second, period, "100", actor=actor)
    assert _refusal(_award, application=first, period=period, actor=actor).code == "bad_transition"


def test_only_staff_decide(period):
    application = _submitted()
    assert _refusal(_award, application=application, period=period, actor=UserFactory()).code == "forbidden"


# --- reports -------------------------------------------------------------------------------------


def test_reports_are_reminded_once_and_overdue_ones_reach_the_secretariat(actor, period):
    award = _award(_submitted(), period, "100", actor=actor)
    progress = award.reports.get(kind="progress")
    mail.outbox.clear()
    counts = services.report_reminders_send(today=progress.due_on - datetime.timedelta(days=3))
    assert counts == {"reminders": 1, "overdue": 0}
    assert mail.outbox[0].to == [award.application.applicant.email]
    assert services.report_reminders_send(today=progress.due_on - datetime.timedelta(days=2)) == {
        "reminders": 0,
        "overdue": 0,
    }
    mail.outbox.clear()
    counts = services.report_reminders_send(today=progress.due_on + datetime.timedelta(days=1))
    assert counts == {"reminders": 0, "overdue": 1}
    assert {m.to[0] for m in mail.outbox} == {
        award.application.applicant.email,
        "secretariat@gpu-alliance.example",
    }


def test_the_reminder_task_runs_the_service(actor, period, freeze):
    from apps.grants.tasks import report_reminders_task

    award = _award(_submitted(), period, "100", actor=actor)
    final = award.reports.get(kind="final")
    freeze(timezone.now() + datetime.timedelta(days=(final.due_on - timezone.localdate()).days + 2))
    result = report_reminders_task.delay().get()
    assert result["overdue"] == 2


def test_a_report_is_submitted_by_the_award_organization(actor, period):
    award = _award(_submitted(), period, "100", actor=actor)
    report = award.reports.get(kind="final")
    error = _refusal(services.report_submit, report_id=report.pk, actor=UserFactory(), body="x")
    assert error.code == "forbidden"
    services.report_submit(
        report_id=report.pk,
        actor=award.application.applicant,
        body="学習を完了しました。",
        outcomes="精度 92%",
        publications="論文 A\n\n論文 B ",
    )
    report.refresh_from_db()
    assert report.submitted_at and report.publications == "論文 A\n論文 B" and not report.is_overdue


def test_typing_a_known_corporate_number_never_makes_the_applicant_its_owner(actor, period):
    member = OrganizationFactory(kind="academic")
    call = CallFactory(program=AcademicProgramFactory())
    application = ApplicationFactory(
        call=call,
        organization=None,
        org_name_ja="なりすまし大学",
        org_kind="academic",
        org_corporate_number=member.corporate_number,
        founded_on=None,
    )
    error = _refusal(_submit, application=application)
    assert member.name_ja in error.message
    # Even if it got through (e.g. submitted before the organization joined), the award refuses.
    Application.objects.filter(pk=application.pk).update(status=S.SUBMITTED)
    assert _refusal(_award, application=application, period=period, actor=actor).code == "organization_exists"
    assert not OrgRole.objects.filter(organization=member, user=application.applicant).exists()
    assert not QuotaGrant.objects.exists()


def test_every_state_change_of_the_cycle_is_audited(actor, period):
    application = ApplicationFactory()
    services.application_update(
        application_id=application.pk, actor=application.applicant, data={"title": "改"}
    )
    _submit(application)
    reviewer = UserFactory()
    services.reviewer_add(call_id=application.call_id, user=reviewer, actor=actor)
    assignment = services.assignment_create(
        application_id=application.pk, reviewer_user=reviewer, actor=actor
    )
    services.review_submit(
        assignment_id=assignment.pk,
        actor=assignment.reviewer,
        scores={c.pk: 3 for c in application.call.criteria.all()},
    )
    award = _award(application, period, "100", actor=actor)
    services.award_set_mentor(award_id=award.pk, actor=actor, mentor=UserFactory())
    report = award.reports.get(kind="final")
    services.report_submit(report_id=report.pk, actor=application.applicant, body="完了")
    services.award_revoke(award_id=award.pk, actor=actor, reason="終了")
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "grant_application.updated",
        "grant_application.submitted",
        "grant_reviewer.added",
        "grant_assignment.created",
        "grant_review.submitted",
        "award.created",
        "grant.created",
        "grant_application.awarded",
        "award.mentor_assigned",
        "award_report.submitted",
        "award.revoked",
        "grant.revoked",
    } <= actions
    assert audit_chain_verify().ok
