"""Votes: eligibility, one ballot per person or per organization, opening and closing times,
quorum, secret ballots, and no double vote under concurrent submission."""

import datetime
import threading

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.governance.models import AuditEvent
from apps.workinggroups import selectors, services
from apps.workinggroups.models import Ballot
from tests.factories import OrgRoleFactory
from tests.workinggroups.factories import GroupMemberFactory, MotionFactory, WorkingGroupFactory

pytestmark = pytest.mark.django_db


def _option(motion, label="賛成"):
    return motion.options.get(label=label).pk


def test_member_votes_once(group, member):
    motion = MotionFactory(group=group)
    services.ballot_cast(motion_id=motion.pk, voter=member, option_id=_option(motion))
    with pytest.raises(ApplicationError) as exc:
        services.ballot_cast(motion_id=motion.pk, voter=member, option_id=_option(motion, "反対"))
    assert exc.value.code == "double_vote"
    assert Ballot.objects.count() == 1


def test_outsiders_and_observers_are_not_eligible(group, alliance_member):
    motion = MotionFactory(group=group)
    observer = GroupMemberFactory(group=group, role="observer").user
    for person in (alliance_member, observer):
        with pytest.raises(ApplicationError) as exc:
            services.ballot_cast(motion_id=motion.pk, voter=person, option_id=_option(motion))
        assert exc.value.code == "not_eligible"
    assert not Ballot.objects.exists()


def test_no_vote_before_opening_or_after_closing(group, member):
    now = timezone.now()
    scheduled = MotionFactory(group=group, opens_at=now + datetime.timedelta(hours=1))
    closed = MotionFactory(
        group=group, opens_at=now - datetime.timedelta(days=2), closes_at=now - datetime.timedelta(seconds=1)
    )
    with pytest.raises(ApplicationError) as exc:
        services.ballot_cast(motion_id=scheduled.pk, voter=member, option_id=_option(scheduled))
    assert exc.value.code == "not_open"
    with pytest.raises(ApplicationError) as exc:
        services.ballot_cast(motion_id=closed.pk, voter=member, option_id=_option(closed))
    assert exc.value.code == "closed"


def test_an_option_of_another_motion_is_refused(group, member):
    motion, other = MotionFactory(group=group), MotionFactory(group=group)
    with pytest.raises(ApplicationError) as exc:
        services.ballot_cast(motion_id=motion.pk, voter=member, option_id=_option(other))
    assert exc.value.code == "option"


def test_one_vote_per_organization(group):
    first = GroupMemberFactory(group=group)
    colleague_role = OrgRoleFactory(organization=first.organization)
    colleague = GroupMemberFactory(group=group, user=colleague_role.user, organization=first.organization)
    motion = MotionFactory(group=group, scope="organization")
    services.ballot_cast(motion_id=motion.pk, voter=first.user, option_id=_option(motion))
    with pytest.raises(ApplicationError) as exc:
        services.ballot_cast(motion_id=motion.pk, voter=colleague.user, option_id=_option(motion))
    assert exc.value.code == "double_vote_org"
    assert Ballot.objects.get().organization == first.organization


def test_outside_researchers_cannot_vote_per_organization(outsider):
    group = WorkingGroupFactory(allow_outside_researchers=True)
    GroupMemberFactory(group=group, user=outsider, organization=None)
    per_org = MotionFactory(group=group, scope="organization")
    with pytest.raises(ApplicationError) as exc:
        services.ballot_cast(motion_id=per_org.pk, voter=outsider, option_id=_option(per_org))
    assert exc.value.code == "not_eligible"
    per_person = MotionFactory(group=group, scope="person")
    services.ballot_cast(motion_id=per_person.pk, voter=outsider, option_id=_option(per_person))


def test_quorum_by_ballots_and_by_share(group, member):
    others = [GroupMemberFactory(group=group).user for _ in range(3)]  # 4 eligible in all
    by_count = MotionFactory(group=group, quorum_kind="ballots", quorum_value=2)
    services.ballot_cast(motion_id=by_count.pk, voter=member, option_id=_option(by_count))
    result = selectors.motion_result(motion=by_count)
    assert (result.ballots, result.eligible, result.quorum_reached) == (1, 4, False)
    services.ballot_cast(motion_id=by_count.pk, voter=others[0], option_id=_option(by_count, "反対"))
    assert selectors.motion_result(motion=by_count).quorum_reached

    by_share = MotionFactory(group=group, quorum_kind="percent", quorum_value=75)  # 3 of 4
    for person in (member, others[0]):
        services.ballot_cast(motion_id=by_share.pk, voter=person, option_id=_option(by_share))
    result = selectors.motion_result(motion=by_share)
    assert result.quorum_needed == 3 and not result.quorum_reached
    services.ballot_cast(motion_id=by_share.pk, voter=others[1], option_id=_option(by_share))
    result = selectors.motion_result(motion=by_share)
    assert result.quorum_reached
    assert {r["option"].label: r["count"] for r in result.rows} == {"賛成": 3, "反対": 0, "棄権": 0}


def test_per_organization_eligibility_counts_organizations(group):
    first = GroupMemberFactory(group=group)
    colleague = OrgRoleFactory(organization=first.organization).user
    GroupMemberFactory(group=group, user=colleague, organization=first.organization)
    GroupMemberFactory(group=group)
    motion = MotionFactory(group=group, scope="organization")
    assert selectors.eligible_voter_count(motion=motion) == 2


def test_secret_ballot_audit_records_no_choice(group, member):
    secret = MotionFactory(group=group, is_secret=True)
    services.ballot_cast(motion_id=secret.pk, voter=member, option_id=_option(secret, "反対"))
    event = AuditEvent.objects.get(action="ballot.cast")
    assert "option" not in event.after
    assert "反対" not in str(event.after) and "反対" not in str(event.before)
    open_motion = MotionFactory(group=group)
    services.ballot_cast(motion_id=open_motion.pk, voter=member, option_id=_option(open_motion, "反対"))
    assert AuditEvent.objects.filter(action="ballot.cast").order_by("-id").first().after["option"] == "反対"


def test_motion_creation_rules(group, chair, member):
    now = timezone.now()
    kwargs = {
        "group_id": group.pk,
        "title": "規約改定",
        "description": "",
        "options": ["賛成", "反対"],
        "scope": "person",
        "is_secret": True,
        "opens_at": now,
        "closes_at": now + datetime.timedelta(days=1),
        "quorum_kind": "percent",
        "quorum_value": 50,
    }
    motion = services.motion_create(actor=chair, **kwargs)
    assert list(motion.options.values_list("label", flat=True)) == ["賛成", "反対"]
    with pytest.raises(ApplicationError):
        services.motion_create(actor=member, **kwargs)
    for bad in (
        {"options": ["賛成", "賛成 "]},
        {"closes_at": now - datetime.timedelta(minutes=1)},
        {"quorum_value": 101},
        {"quorum_value": 0},
    ):
        with pytest.raises(ApplicationError):
            services.motion_create(actor=chair, **{**kwargs, **bad})


def test_database_refuses_a_second_ballot_of_an_organization(group):
    """The partial unique constraint holds even when the service's checks are bypassed."""
    from django.db import IntegrityError, transaction

    first = GroupMemberFactory(group=group)
    colleague = OrgRoleFactory(organization=first.organization).user
    motion = MotionFactory(group=group, scope="organization")
    option = motion.options.first()
    Ballot.objects.create(motion=motion, option=option, voter=first.user, organization=first.organization)
    with pytest.raises(IntegrityError), transaction.atomic():
        Ballot.objects.create(motion=motion, option=option, voter=colleague, organization=first.organization)


def _race(calls):
    """Run the calls at the same moment in threads; return what each raised or returned."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:  # collected for the assertions
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_ballots_of_one_person_count_once():
    group = WorkingGroupFactory()
    voter = GroupMemberFactory(group=group).user
    motion = MotionFactory(group=group)
    option = _option(motion)
    results = _race([lambda: services.ballot_cast(motion_id=motion.pk, voter=voter, option_id=option)] * 6)
    assert sum(isinstance(r, Ballot) for r in results) == 1
    assert all(isinstance(r, (Ballot, ApplicationError)) for r in results), results
    assert Ballot.objects.filter(motion=motion).count() == 1
    assert AuditEvent.objects.filter(action="ballot.cast").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_ballots_of_one_organization_count_once():
    group = WorkingGroupFactory()
    first = GroupMemberFactory(group=group)
    voters = [first.user]
    for _ in range(4):
        user = OrgRoleFactory(organization=first.organization).user
        GroupMemberFactory(group=group, user=user, organization=first.organization)
        voters.append(user)
    motion = MotionFactory(group=group, scope="organization")
    option = _option(motion)
    results = _race(
        [lambda v=v: services.ballot_cast(motion_id=motion.pk, voter=v, option_id=option) for v in voters]
    )
    assert sum(isinstance(r, Ballot) for r in results) == 1
    assert all(isinstance(r, (Ballot, ApplicationError)) for r in results), results
    assert Ballot.objects.filter(motion=motion).count() == 1


def test_a_suspended_organization_does_not_vote_per_organization(group):
    seat = GroupMemberFactory(group=group)
    GroupMemberFactory(group=group)
    motion = MotionFactory(group=group, scope="organization")
    assert selectors.eligible_voter_count(motion=motion) == 2
    seat.organization.membership.status = "suspended"
    seat.organization.membership.save()
    assert selectors.eligible_voter_count(motion=motion) == 1
    with pytest.raises(ApplicationError) as exc:
        services.ballot_cast(motion_id=motion.pk, voter=seat.user, option_id=_option(motion))
    assert exc.value.code == "not_eligible"


def test_no_vote_in_a_closed_group(group, member, staff):
    motion = MotionFactory(group=group)
    services.group_close(group_id=group.pk, actor=staff)
    with pytest.raises(ApplicationError) as exc:
        services.ballot_cast(motion_id=motion.pk, voter=member, option_id=_option(motion))
    assert exc.value.code == "closed"
