"""Pages: public, applicant, reviewer and secretariat; permissions (404 for whoever may not see),
file downloads, htmx partials, Japanese text and query counts."""

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.grants import services
from apps.grants.models import Application, Assignment, Award
from apps.providers.models import QuotaGrant
from tests.factories import OrganizationFactory, OrgRoleFactory, StaffFactory, UserFactory
from tests.grants.factories import ApplicationFactory, CallFactory, ProgramFactory, ReviewerFactory

pytestmark = pytest.mark.django_db
S = Application.Status


def _submitted(call=None, **kwargs):
    application = ApplicationFactory(call=call or CallFactory(), **kwargs)
    services.application_submit(application_id=application.pk, actor=application.applicant)
    application.refresh_from_db()
    return application


def _assign(application, reviewer=None, staff=None):
    reviewer = reviewer or ReviewerFactory(call=application.call).user
    return services.assignment_create(
        application_id=application.pk, reviewer_user=reviewer, actor=staff or StaffFactory()
    )


# --- public --------------------------------------------------------------------------------------


def test_public_program_and_call_pages_in_japanese(client):
    call = CallFactory()
    response = client.get(reverse("grants:program-list"))
    assert response.status_code == 200
    assert call.program.name_ja in response.content.decode() and call.title_ja in response.content.decode()
    response = client.get(call.program.get_absolute_url())
    assert response.status_code == 200 and call.title_ja in response.content.decode()
    response = client.get(call.get_absolute_url())
    assert response.status_code == 200
    assert 'id="apply-link"' in response.content.decode()
    assert "新規性" in response.content.decode()  # the rubric is public


def test_unpublished_programs_and_calls_are_404(client):
    hidden = CallFactory(program=ProgramFactory(is_published=False))
    assert client.get(hidden.program.get_absolute_url()).status_code == 404
    assert client.get(hidden.get_absolute_url()).status_code == 404
    draft_call = CallFactory(is_published=False)
    assert client.get(draft_call.get_absolute_url()).status_code == 404


def test_a_closed_call_offers_no_apply_button(client):
    call = CallFactory(
        opens_at=timezone.now() - datetime.timedelta(days=30),
        closes_at=timezone.now() - datetime.timedelta(seconds=1),
    )
    body = client.get(call.get_absolute_url()).content.decode()
    assert 'id="apply-link"' not in body


# --- applicants ----------------------------------------------------------------------------------


def _form_data(org, **extra):
    data = {
        "organization": org.pk,
        "founded_on": "2024-05-01",
        "pi_name": "山田 花子",
        "pi_email": "pi@example.jp",
        "title": "日本語 LLM の PoC",
        "abstract": "概要",
        "plan": "計画",
        "duration_months": "3",
        "hours_H200": "800",
        "hours_B200": "",
    }
    data.update(extra)
    return data


def test_a_startup_creates_a_draft_and_submits_it(client):
    call = CallFactory()
    user = UserFactory()
    org = OrganizationFactory(kind="startup")
    OrgRoleFactory(organization=org, user=user, role="owner")
    client.force_login(user)
    url = reverse("grants:application-new", args=[call.program.slug, call.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, _form_data(org))
    application = Application.objects.get()
    assert response.status_code == 302 and response.url == application.get_absolute_url()
    assert application.requested_hours == {"H200": 800} and application.status == S.DRAFT
    page = client.get(application.get_absolute_url()).content.decode()
    assert reverse("grants:application-submit", args=[application.pk]) in page
    client.post(reverse("grants:application-submit", args=[application.pk]))
    application.refresh_from_db()
    assert application.status == S.SUBMITTED


def test_bad_input_gets_form_errors_not_500(client):
    call = CallFactory()
    user = UserFactory()
    org = OrganizationFactory(kind="startup")
    OrgRoleFactory(organization=org, user=user, role="owner")
    client.force_login(user)
    url = reverse("grants:application-new", args=[call.program.slug, call.pk])
    response = client.post(url, _form_data(org, duration_months="99", hours_H200="-5", pi_email="nope"))
    assert response.status_code == 400
    assert set(response.context["form"].errors) >= {"duration_months", "hours_H200", "pi_email"}
    other_org = OrganizationFactory(kind="startup")
    response = client.post(url, _form_data(other_org))
    assert response.status_code == 400 and not Application.objects.exists()


def test_an_ineligible_submission_shows_the_reasons(client):
    application = ApplicationFactory(organization=OrganizationFactory(kind="enterprise"))
    client.force_login(application.applicant)
    page = client.get(application.get_absolute_url()).content.decode()
    assert 'class="problems"' in page
    response = client.post(reverse("grants:application-submit", args=[application.pk]), follow=True)
    assert "message-error" in response.content.decode()
    application.refresh_from_db()
    assert application.status == S.DRAFT


def test_outsiders_get_404_on_applications_attachments_and_reports(client):
    application = _submitted()
    attachment = services.attachment_add(
        application_id=application.pk,
        actor=application.applicant,
        uploaded_file=SimpleUploadedFile("a.pdf", b"%PDF-1.4 x", content_type="application/pdf"),
    )
    client.force_login(UserFactory())
    for url in (
        application.get_absolute_url(),
        reverse("grants:application-edit", args=[application.pk]),
        reverse("grants:attachment-download", args=[attachment.pk]),
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("grants:application-withdraw", args=[application.pk])).status_code == 404
    assert client.post(reverse("grants:attachment-delete", args=[attachment.pk])).status_code == 404
    client.logout()
    assert client.get(application.get_absolute_url()).status_code == 302  # to the login page


def test_attachment_upload_and_permission_checked_download(client):
    application = ApplicationFactory()
    client.force_login(application.applicant)
    url = reverse("grants:attachment-upload", args=[application.pk])
    response = client.post(
        url, {"file": SimpleUploadedFile("計画.pdf", b"%PDF-1.7 body", content_type="application/pdf")}
    )
    assert response.status_code == 302
    attachment = application.attachments.get()
    download = client.get(reverse("grants:attachment-download", args=[attachment.pk]))
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"%PDF-1.7 body"
    assert download["Content-Type"] == "application/pdf" and "attachment" in download["Content-Disposition"]
    response = client.post(
        url, {"file": SimpleUploadedFile("x.pdf", b"not a pdf", content_type="application/pdf")}, follow=True
    )
    assert "message-error" in response.content.decode() and application.attachments.count() == 1
    # An assigned reviewer may download it; after declaring a conflict no longer.
    services.application_submit(application_id=application.pk, actor=application.applicant)
    assignment = _assign(application)
    client.force_login(assignment.reviewer)
    assert client.get(reverse("grants:attachment-download", args=[attachment.pk])).status_code == 200
    services.assignment_declare_conflict(
        assignment_id=assignment.pk, actor=assignment.reviewer, reason="同僚"
    )
    assert client.get(reverse("grants:attachment-download", args=[attachment.pk])).status_code == 404


def test_applicants_never_see_reviewer_identities(client):
    application = _submitted()
    reviewer = UserFactory(full_name="審査 一郎", email="secret.reviewer@example.jp")
    ReviewerFactory(call=application.call, user=reviewer)
    assignment = _assign(application, reviewer)
    novelty, feasibility = application.call.criteria.all()
    services.review_submit(
        assignment_id=assignment.pk,
        actor=reviewer,
        scores={novelty.pk: 4, feasibility.pk: 4},
        comment="内部コメント",
    )
    services.application_decline(
        application_id=application.pk, actor=StaffFactory(), feedback="今回は見送ります"
    )
    client.force_login(application.applicant)
    page = client.get(application.get_absolute_url()).content.decode()
    assert "今回は見送ります" in page
    for secret in ("secret.reviewer@example.jp", "審査 一郎", "内部コメント"):
        assert secret not in page


# --- reviewers -----------------------------------------------------------------------------------


def test_reviewers_see_only_their_assignments(client):
    mine, other = _submitted(), _submitted()
    assignment = _assign(mine)
    other_assignment = _assign(other)
    client.force_login(assignment.reviewer)
    listing = client.get(reverse("grants:review-list")).content.decode()
    assert mine.title in listing and other.title not in listing
    assert client.get(assignment.get_absolute_url()).status_code == 200
    assert client.get(other_assignment.get_absolute_url()).status_code == 404
    assert client.get(other.get_absolute_url()).status_code == 404  # the applicant's page too
    assert client.get(reverse("grants:staff-application", args=[other.pk])).status_code == 404
    assert (
        client.post(
            reverse("grants:review-conflict", args=[other_assignment.pk]), {"reason": "x"}
        ).status_code
        == 404
    )


def test_a_reviewer_scores_through_the_page(client):
    assignment = _assign(_submitted())
    novelty, feasibility = assignment.application.call.criteria.all()
    client.force_login(assignment.reviewer)
    url = assignment.get_absolute_url()
    response = client.post(url, {f"score_{novelty.pk}": "9", f"score_{feasibility.pk}": "3"})
    assert response.status_code == 400 and f"score_{novelty.pk}" in response.context["form"].errors
    response = client.post(
        url, {f"score_{novelty.pk}": "5", f"comment_{novelty.pk}": "斬新", f"score_{feasibility.pk}": "3"}
    )
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SUBMITTED


def test_declaring_a_conflict_releases_the_page(client):
    assignment = _assign(_submitted())
    client.force_login(assignment.reviewer)
    response = client.post(reverse("grants:review-conflict", args=[assignment.pk]), {"reason": "共同研究者"})
    assert response.status_code == 302
    assert client.get(assignment.get_absolute_url()).status_code == 404


# --- secretariat ---------------------------------------------------------------------------------


def test_staff_pages_are_404_to_members(client):
    application = _submitted()
    client.force_login(application.applicant)
    for url in (
        reverse("grants:staff-programs"),
        reverse("grants:staff-call", args=[application.call_id]),
        reverse("grants:staff-application", args=[application.pk]),
        reverse("grants:staff-reports"),
    ):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(
            reverse("grants:staff-decide", args=[application.pk]), {"decision": "decline"}
        ).status_code
        == 404
    )


def test_ranking_orders_by_weighted_score_with_budget_consumption(staff_client):
    call = CallFactory(budget={"H200": 1500})
    low, high, unscored = (_submitted(call) for _ in range(3))
    novelty, feasibility = call.criteria.all()
    for application, (n, f) in ((low, (1, 5)), (high, (5, 1))):
        assignment = _assign(application)
        services.review_submit(
            assignment_id=assignment.pk, actor=assignment.reviewer, scores={novelty.pk: n, feasibility.pk: f}
        )
    response = staff_client.get(reverse("grants:staff-call", args=[call.pk]))
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [r.application for r in rows] == [high, low, unscored]
    # novelty weighs 2, feasibility 1: (5/5*2 + 1/5*1) / 3 = 73.33; (1/5*2 + 5/5*1) / 3 = 46.67
    assert [r.score for r in rows[:2]] == [73.33, 46.67] and rows[2].score is None
    assert [r.cumulative["H200"] for r in rows] == [1000, 2000, 3000]
    assert [r.within_budget for r in rows] == [True, False, False]
    # htmx asks only for the ranking partial.
    partial = staff_client.get(
        reverse("grants:staff-call", args=[call.pk]), {"status": "submitted"}, HTTP_HX_REQUEST="true"
    )
    body = partial.content.decode()
    assert body.lstrip().startswith('<div id="ranking"') and "<html" not in body


def test_staff_award_through_the_page_creates_grants(staff_client, period):
    application = _submitted()
    url = reverse("grants:staff-decide", args=[application.pk])
    today = timezone.localdate()
    data = {
        "decision": "award",
        "valid_from": today.isoformat(),
        "valid_until": services.add_months(today, 2).isoformat(),
        f"period_{period.pk}": "600",
        "feedback": "採択",
    }
    response = staff_client.post(url, {**data, f"period_{period.pk}": "5000"})
    assert response.status_code == 400 and response.context["decision_form"].non_field_errors()
    assert not Award.objects.exists()
    response = staff_client.post(url, data)
    assert response.status_code == 302
    grant = QuotaGrant.objects.get()
    assert grant.source == "award" and grant.gpu_hours == 600
    page = staff_client.get(reverse("grants:staff-application", args=[application.pk])).content.decode()
    assert grant.get_absolute_url() in page


def test_staff_assign_refuses_conflicts_with_a_form_error(staff_client):
    application = _submitted()
    colleague = UserFactory()
    OrgRoleFactory(organization=application.organization, user=colleague)
    ReviewerFactory(call=application.call, user=colleague)
    response = staff_client.post(
        reverse("grants:staff-assign", args=[application.pk]), {"reviewer": colleague.pk}
    )
    assert response.status_code == 400 and "reviewer" in response.context["assign_form"].errors


def test_overdue_reports_are_flagged_to_staff(staff_client, period):
    application = _submitted()
    today = timezone.localdate()
    award = services.application_award(
        application_id=application.pk,
        actor=StaffFactory(),
        lines=[(period.pk, "100")],
        valid_from=today,
        valid_until=services.add_months(today, 1),
    )
    final = award.reports.get()
    # The award ended long ago (time travel would also expire the staff session).
    type(final).objects.filter(pk=final.pk).update(due_on=today - datetime.timedelta(days=1))
    page = staff_client.get(reverse("grants:staff-reports")).content.decode()
    assert f'id="report-{final.pk}" class="overdue"' in page
    assert "badge-overdue" in page


# --- query counts --------------------------------------------------------------------------------


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_staff_call_page_queries_do_not_grow_with_applications(staff_client):
    call = CallFactory()
    reviewers = [ReviewerFactory(call=call) for _ in range(2)]
    for _ in range(2):
        _submitted(call)
    services.assignments_auto(call_id=call.pk, actor=StaffFactory())
    url = reverse("grants:staff-call", args=[call.pk])
    small = _queries(staff_client, url)
    for _ in range(10):
        _submitted(call)
    ReviewerFactory(call=call)
    services.assignments_auto(call_id=call.pk, actor=StaffFactory())
    for assignment in Assignment.objects.filter(application__call=call):
        criteria = list(call.criteria.all())
        services.review_submit(
            assignment_id=assignment.pk, actor=assignment.reviewer, scores={c.pk: 3 for c in criteria}
        )
    assert _queries(staff_client, url) == small
    assert reviewers


def test_applicant_and_reviewer_lists_do_not_grow(client):
    user = UserFactory()
    reviewer = UserFactory()
    client.force_login(user)

    def add(n):
        for _ in range(n):
            application = _submitted(applicant=user)
            ReviewerFactory(call=application.call, user=reviewer)
            _assign(application, reviewer)

    add(2)
    small = _queries(client, reverse("grants:my-applications")), _queries(client, reverse("dashboard"))
    add(8)
    assert (
        _queries(client, reverse("grants:my-applications")),
        _queries(client, reverse("dashboard")),
    ) == small
    client.force_login(reviewer)
    assert _queries(client, reverse("grants:review-list")) <= 6


def test_the_apply_page_of_a_closed_call_sends_back_to_the_call(client):
    call = CallFactory(
        opens_at=timezone.now() - datetime.timedelta(days=30),
        closes_at=timezone.now() - datetime.timedelta(seconds=1),
    )
    client.force_login(UserFactory())
    response = client.get(reverse("grants:application-new", args=[call.program.slug, call.pk]))
    assert response.status_code == 302 and response.url == call.get_absolute_url()


def test_public_program_list_queries_do_not_grow(client):
    CallFactory()
    small = _queries(client, reverse("grants:program-list"))
    for _ in range(6):
        CallFactory()
    assert _queries(client, reverse("grants:program-list")) == small


def test_a_university_without_a_portal_account_applies_with_its_details(client):
    from tests.grants.factories import AcademicProgramFactory

    call = CallFactory(program=AcademicProgramFactory())
    user = UserFactory()
    client.force_login(user)
    url = reverse("grants:application-new", args=[call.program.slug, call.pk])
    data = {
        "organization": "",
        "org_name_ja": "北海道先端大学",
        "org_name_en": "Hokkaido Advanced University",
        "org_kind": "academic",
        "pi_name": "北 教授",
        "pi_email": user.email,
        "title": "気象予測モデル",
        "abstract": "概要",
        "plan": "計画",
        "duration_months": "6",
        "hours_H200": "3000",
    }
    response = client.post(url, {**data, "org_name_ja": "", "org_kind": ""})
    assert response.status_code == 400 and "org_name_ja" in response.context["form"].errors
    response = client.post(url, data)
    application = Application.objects.get()
    assert application.organization is None and application.org_kind == "academic"
    client.post(reverse("grants:application-submit", args=[application.pk]))
    application.refresh_from_db()
    assert application.status == S.SUBMITTED
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert "気象予測モデル" in dashboard


def test_staff_manage_reviewers_and_assign_automatically(staff_client):
    application = _submitted()
    reviewer = UserFactory()
    url = reverse("grants:staff-reviewer-add", args=[application.call_id])
    response = staff_client.post(url, {"email": "nobody@example.jp"}, follow=True)
    assert "message-error" in response.content.decode()
    staff_client.post(url, {"email": reviewer.email.upper()})
    staff_client.post(reverse("grants:staff-auto-assign", args=[application.call_id]))
    assert Assignment.objects.get().reviewer == reviewer
    remove = reverse("grants:staff-reviewer-remove", args=[reviewer.grant_reviewer_of.get().pk])
    response = staff_client.post(remove, follow=True)
    assert "message-error" in response.content.decode()  # a review is still to do


def test_staff_revoke_and_mentor_through_the_pages(staff_client, period, django_capture_on_commit_callbacks):
    from django.core import mail

    application = _submitted()
    today = timezone.localdate()
    award = services.application_award(
        application_id=application.pk,
        actor=StaffFactory(),
        lines=[(period.pk, "100")],
        valid_from=today,
        valid_until=services.add_months(today, 2),
    )
    mentor = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            reverse("grants:staff-award-mentor", args=[award.pk]), {"mentor_email": mentor.email}
        )
    award.refresh_from_db()
    assert award.mentor == mentor and any(m.to == [mentor.email] for m in mail.outbox)
    response = staff_client.post(
        reverse("grants:staff-award-revoke", args=[award.pk]), {"reason": ""}, follow=True
    )
    assert "message-error" in response.content.decode()
    staff_client.post(reverse("grants:staff-award-revoke", args=[award.pk]), {"reason": "規約違反"})
    award.refresh_from_db()
    assert award.status == Award.Status.REVOKED
    assert QuotaGrant.objects.get().state == QuotaGrant.State.REVOKING


def test_the_award_organization_submits_its_report(client, period):
    application = _submitted()
    today = timezone.localdate()
    award = services.application_award(
        application_id=application.pk,
        actor=StaffFactory(),
        lines=[(period.pk, "100")],
        valid_from=today,
        valid_until=services.add_months(today, 1),
    )
    report = award.reports.get()
    client.force_login(UserFactory())
    assert client.get(report.get_absolute_url()).status_code == 404
    colleague = UserFactory()
    OrgRoleFactory(organization=application.organization, user=colleague)
    client.force_login(colleague)
    response = client.post(report.get_absolute_url(), {"body": ""})
    assert response.status_code == 400
    response = client.post(
        report.get_absolute_url(), {"body": "完了しました", "outcomes": "精度向上", "publications": "論文 1"}
    )
    assert response.status_code == 302
    report.refresh_from_db()
    assert report.submitted_by == colleague and report.publications == "論文 1"


def test_staff_application_page_queries_do_not_grow_with_reviews(staff_client):
    call = CallFactory(reviews_per_application=1)
    application = _submitted(call)
    _assign(application)
    url = reverse("grants:staff-application", args=[application.pk])
    small = _queries(staff_client, url)
    for _ in range(4):
        ReviewerFactory(call=call)
    call.reviews_per_application = 5
    call.save()
    services.assignments_auto(call_id=call.pk, actor=StaffFactory())
    criteria = list(call.criteria.all())
    for assignment in application.assignments.all():
        services.review_submit(
            assignment_id=assignment.pk, actor=assignment.reviewer, scores={c.pk: 2 for c in criteria}
        )
    assert _queries(staff_client, url) == small


def test_posting_to_a_decided_application_explains_instead_of_failing(client):
    application = _submitted()
    assignment = _assign(application)
    criteria = list(application.call.criteria.all())
    services.review_submit(
        assignment_id=assignment.pk, actor=assignment.reviewer, scores={c.pk: 3 for c in criteria}
    )
    services.application_decline(application_id=application.pk, actor=StaffFactory(), feedback="見送り")
    client.force_login(assignment.reviewer)
    response = client.post(
        assignment.get_absolute_url(), {f"score_{c.pk}": "5" for c in criteria}, follow=True
    )
    assert "message-error" in response.content.decode()
    assert set(assignment.scores.values_list("score", flat=True)) == {3}
    staff = StaffFactory()
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    TOTP.activate(staff, generate_totp_secret())
    client.force_login(staff)
    response = client.post(
        reverse("grants:staff-decide", args=[application.pk]), {"decision": "waitlist"}, follow=True
    )
    assert "message-error" in response.content.decode()
    application.refresh_from_db()
    assert application.status == S.DECLINED


def test_editing_after_the_deadline_sends_back_with_a_message(client, freeze):
    application = ApplicationFactory()
    client.force_login(application.applicant)
    url = reverse("grants:application-edit", args=[application.pk])
    assert client.get(url).status_code == 200
    freeze(application.call.closes_at)
    response = client.post(url, {"title": "遅い"})
    assert response.status_code == 302 and response.url == application.get_absolute_url()
    application.refresh_from_db()
    assert application.title != "遅い"


def test_a_non_member_awardee_sees_its_quota_but_stays_out_of_the_directory(client, period):
    from tests.grants.factories import AcademicProgramFactory

    call = CallFactory(program=AcademicProgramFactory())
    application = _submitted(
        call,
        organization=None,
        org_name_ja="琉球海洋大学",
        org_name_en="Ryukyu Ocean University",
        org_kind="academic",
        founded_on=None,
    )
    today = timezone.localdate()
    award = services.application_award(
        application_id=application.pk,
        actor=StaffFactory(),
        lines=[(period.pk, "500")],
        valid_from=today,
        valid_until=services.add_months(today, 2),
    )
    client.force_login(application.applicant)
    page = client.get(reverse("providers:org-grants", args=[award.organization.slug])).content.decode()
    assert period.pool.code in page
    assert "琉球海洋大学" not in client.get(reverse("organizations:directory")).content.decode()
