"""Conflicts of interest follow changes: a reviewer who gains a role in the applicant organization
after being assigned is blocked on every read and every write, and the secretariat sees the
assignment flagged (docs/grants.md, "Conflicts of interest")."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.core.exceptions import ApplicationError
from apps.grants import selectors, services
from apps.grants.models import Application, Assignment
from apps.organizations.models import OrgRole
from tests.factories import OrganizationFactory, OrgRoleFactory, StaffFactory
from tests.grants.factories import ApplicationFactory, CallFactory, ReviewerFactory

pytestmark = pytest.mark.django_db


def _submitted(**kwargs):
    application = ApplicationFactory(call=kwargs.pop("call", None) or CallFactory(), **kwargs)
    services.application_submit(application_id=application.pk, actor=application.applicant)
    application.refresh_from_db()
    return application


def _assign(application, staff):
    reviewer = ReviewerFactory(call=application.call).user
    return services.assignment_create(application_id=application.pk, reviewer_user=reviewer, actor=staff)


def _attachment(application):
    return services.attachment_add(
        application_id=application.pk,
        actor=application.applicant,
        uploaded_file=SimpleUploadedFile("plan.pdf", b"%PDF-1.4 plan", content_type="application/pdf"),
    )


def _scores(application, value=4):
    return {c.pk: value for c in application.call.criteria.all()}


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture(params=["role_in_organization", "role_by_corporate_number"])
def gain_role(request):
    """Two ways a reviewer comes to belong to the applicant organization after the assignment."""

    def gain(application, user):
        if request.param == "role_in_organization":
            OrgRoleFactory(organization=application.organization, user=user, role="member")
        else:
            # An application of a non-member that typed its corporate number; the reviewer joins an
            # organization with that number.
            org = OrganizationFactory()
            Application.objects.filter(pk=application.pk).update(
                organization=None,
                org_corporate_number=org.corporate_number,
                org_name_ja="東京先端大学",
                org_kind="academic",
            )
            OrgRoleFactory(organization=org, user=user, role="member")

    return gain


def test_every_reviewer_path_is_closed_once_the_reviewer_gains_a_role(client, staff, gain_role):
    application = _submitted()
    attachment = _attachment(application)
    assignment = _assign(application, staff)
    client.force_login(assignment.reviewer)
    page = assignment.get_absolute_url()
    download = reverse("grants:attachment-download", args=[attachment.pk])
    assert client.get(page).status_code == 200
    assert client.get(download).status_code == 200

    gain_role(application, assignment.reviewer)

    assert client.get(page).status_code == 404
    assert client.get(page, headers={"HX-Request": "true"}).status_code == 404
    assert client.get(download).status_code == 404
    criteria = list(application.call.criteria.all())
    response = client.post(page, {f"score_{c.pk}": "3" for c in criteria})
    assert response.status_code == 404
    assert not assignment.scores.exists()
    # The list tells the reviewer it is blocked, without the application's title or a link to it.
    listing = client.get(reverse("grants:review-list")).content.decode()
    assert f'id="assignment-{assignment.pk}" class="blocked"' in listing
    assert application.title not in listing and page not in listing
    assert "ブロック中：利益相反" in listing  # Japanese by default


def test_the_service_refuses_scores_from_a_reviewer_in_conflict(staff, gain_role):
    application = _submitted()
    assignment = _assign(application, staff)
    gain_role(application, assignment.reviewer)
    with pytest.raises(ApplicationError) as exc:
        services.review_submit(
            assignment_id=assignment.pk, actor=assignment.reviewer, scores=_scores(application)
        )
    assert exc.value.code == "conflict"
    assert not assignment.scores.exists()


def test_a_submitted_review_stops_counting_and_cannot_be_revised(staff):
    application = _submitted()
    honest = _assign(application, staff)
    conflicted = _assign(application, staff)
    services.review_submit(assignment_id=honest.pk, actor=honest.reviewer, scores=_scores(application, 5))
    services.review_submit(
        assignment_id=conflicted.pk, actor=conflicted.reviewer, scores=_scores(application, 0)
    )
    rows, _budget = selectors.call_ranking(call=application.call)
    assert rows[0].score == 50.0 and rows[0].reviews_done == 2

    OrgRoleFactory(organization=application.organization, user=conflicted.reviewer, role="admin")

    rows, _budget = selectors.call_ranking(call=application.call)
    assert rows[0].score == 100.0  # only the review without a conflict counts
    assert rows[0].reviews_done == 1 and rows[0].reviews_live == 1 and rows[0].conflicts == 1
    with pytest.raises(ApplicationError):
        services.review_submit(
            assignment_id=conflicted.pk, actor=conflicted.reviewer, scores=_scores(application, 5)
        )


def test_staff_see_the_assignment_flagged_release_it_and_auto_assign_a_replacement(staff_client, staff):
    application = _submitted()
    ReviewerFactory(call=application.call)  # a spare reviewer for the replacement
    first = _assign(application, staff)
    second = _assign(application, staff)
    OrgRoleFactory(organization=application.organization, user=first.reviewer, role="member")

    page = staff_client.get(reverse("grants:staff-application", args=[application.pk])).content.decode()
    assert f'id="blocked-{first.pk}"' in page and f'id="blocked-{second.pk}"' not in page
    ranking = staff_client.get(reverse("grants:staff-call", args=[application.call_id])).context["rows"]
    assert [(r.conflicts, r.reviews_live) for r in ranking] == [(1, 1)]

    # Releasing an assignment without a conflict is refused.
    url = reverse("grants:staff-assignment-release", args=[application.pk, second.pk])
    staff_client.post(url)
    second.refresh_from_db()
    assert second.status == Assignment.Status.ASSIGNED

    url = reverse("grants:staff-assignment-release", args=[application.pk, first.pk])
    assert staff_client.post(url).status_code == 302
    first.refresh_from_db()
    assert first.status == Assignment.Status.CONFLICT and first.conflict_reason
    result = services.assignments_auto(call_id=application.call_id, actor=staff)
    assert result.created == 1
    live = application.assignments.filter(status__in=Assignment.ACTIVE)
    assert live.count() == 2 and not live.filter(reviewer=first.reviewer).exists()


def test_auto_assign_replaces_a_conflicted_reviewer_without_a_release(staff):
    application = _submitted()
    spare = ReviewerFactory(call=application.call).user
    first, _second = _assign(application, staff), _assign(application, staff)
    OrgRoleFactory(organization=application.organization, user=first.reviewer, role="member")
    result = services.assignments_auto(call_id=application.call_id, actor=staff)
    assert result.created == 1
    assert application.assignments.filter(reviewer=spare).exists()


def test_release_is_staff_only_and_404_for_other_applications(client, staff):
    application, other = _submitted(), _submitted()
    assignment = _assign(application, staff)
    OrgRoleFactory(organization=application.organization, user=assignment.reviewer, role="member")
    client.force_login(assignment.reviewer)
    url = reverse("grants:staff-assignment-release", args=[application.pk, assignment.pk])
    assert client.post(url).status_code == 404
    with pytest.raises(ApplicationError):
        services.assignment_release_conflicted(assignment_id=assignment.pk, actor=assignment.reviewer)
    assert client.post(url).status_code == 404
    client.force_login(staff)
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    TOTP.activate(staff, generate_totp_secret())
    wrong = reverse("grants:staff-assignment-release", args=[other.pk, assignment.pk])
    assert client.post(wrong).status_code == 404
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.ASSIGNED


def test_the_block_lifts_when_the_role_ends_before_staff_release(client, staff):
    application = _submitted()
    assignment = _assign(application, staff)
    role = OrgRoleFactory(organization=application.organization, user=assignment.reviewer, role="member")
    client.force_login(assignment.reviewer)
    assert client.get(assignment.get_absolute_url()).status_code == 404
    OrgRole.objects.filter(pk=role.pk).delete()
    assert client.get(assignment.get_absolute_url()).status_code == 200


def test_the_reviewer_list_query_count_does_not_grow(client, staff, django_assert_max_num_queries):
    call = CallFactory()
    reviewer = ReviewerFactory(call=call).user

    def count():
        client.force_login(reviewer)
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("grants:review-list")).status_code == 200
        return len(ctx.captured_queries)

    for _ in range(2):
        a = _submitted(call=call)
        services.assignment_create(application_id=a.pk, reviewer_user=reviewer, actor=staff)
    few = count()
    for _ in range(6):
        a = _submitted(call=call)
        services.assignment_create(application_id=a.pk, reviewer_user=reviewer, actor=staff)
        OrgRoleFactory(organization=a.organization, user=reviewer, role="member")
    assert count() == few
