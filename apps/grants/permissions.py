"""Object permissions (rules) of grant programs. Views answer 404 when these say no."""

import rules

from apps.grants.conflicts import is_conflicted
from apps.grants.models import Application, Assignment
from apps.organizations.permissions import is_staff


@rules.predicate
def is_applicant(user, application: Application) -> bool:
    return bool(user and user.is_authenticated and application and application.applicant_id == user.pk)


@rules.predicate
def is_assigned_reviewer(user, assignment: Assignment) -> bool:
    """Only the reviewer's own, live assignments: a declared conflict releases the application, and
    a conflict that arises later (a role in the applicant organization) blocks it on every check."""
    return bool(
        user
        and user.is_authenticated
        and assignment
        and assignment.reviewer_id == user.pk
        and assignment.status in Assignment.ACTIVE
        and not is_conflicted(assignment)
    )


rules.add_perm("grants.view_application", is_applicant | is_staff)
rules.add_perm("grants.edit_application", is_applicant)
rules.add_perm("grants.review_assignment", is_assigned_reviewer)
rules.add_perm("grants.manage_programs", is_staff)
