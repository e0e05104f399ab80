"""Who may see and do what in a working group (rules predicates).

Views answer 404, not 403, when a person may not *see* a group or its content. What a person
is in a group is looked up once per request and user (``group_access``) and cached on the user.

- public: anyone reads the group page, meetings, documents and discussions;
- members_only: people of an active member organization, the group's own members and staff;
- private: the group's members and staff only.
"""

from __future__ import annotations

from dataclasses import dataclass

import rules

from apps.organizations.models import Membership, Organization
from apps.workinggroups.models import GroupMember, Meeting, WorkingGroup

Role = GroupMember.Role


def member_organizations(user, *, fresh: bool = False) -> list[Organization]:
    """The user's organizations whose alliance membership is active (cached on the user)."""
    if not (user and user.is_authenticated):
        return []
    if fresh or not hasattr(user, "_wg_member_orgs"):
        user._wg_member_orgs = list(
            Organization.objects.filter(roles__user=user, membership__status=Membership.Status.ACTIVE)
            .distinct()
            .order_by("name_en")
        )
    return user._wg_member_orgs


def is_alliance_member(user) -> bool:
    return bool(member_organizations(user))


@dataclass(frozen=True)
class GroupAccess:
    seat: GroupMember | None
    is_staff: bool
    is_alliance_member: bool
    can_view: bool

    @property
    def is_member(self) -> bool:
        return self.seat is not None

    @property
    def role(self) -> str | None:
        return self.seat.role if self.seat else None

    @property
    def can_manage(self) -> bool:
        """Chair and vice-chair run the group (members, moderation, votes); staff too."""
        return self.is_staff or self.role in GroupMember.MANAGER_ROLES

    @property
    def can_organize(self) -> bool:
        """Meetings, minutes and attendance: chair, vice-chair, secretary and staff."""
        return self.is_staff or self.role in GroupMember.ORGANIZER_ROLES

    @property
    def can_see_links(self) -> bool:
        """Online meeting links are members-only: the group's members and staff, nobody else
        (not visitors of a public group, not other people of member organizations)."""
        return self.is_member or self.is_staff

    @property
    def can_contribute(self) -> bool:
        """Post in discussions and upload documents: any member of the group."""
        return self.is_member


def group_access(user, group: WorkingGroup, *, fresh: bool = False) -> GroupAccess:
    """What ``user`` is in ``group``. Pages use the per-request cache; services pass
    ``fresh=True`` so that a check made inside their transaction reads the database."""
    cache = getattr(user, "_wg_access", None) if user is not None else None
    if not fresh and cache is not None and group.pk in cache:
        return cache[group.pk]
    authenticated = bool(user and user.is_authenticated)
    seat = (
        GroupMember.objects.filter(group=group, user=user).select_related("organization").first()
        if authenticated
        else None
    )
    is_staff = authenticated and user.is_staff
    alliance = bool(member_organizations(user, fresh=fresh)) if authenticated else False
    if group.visibility == WorkingGroup.Visibility.PUBLIC:
        can_view = True
    elif group.visibility == WorkingGroup.Visibility.MEMBERS_ONLY:
        can_view = is_staff or seat is not None or alliance
    else:
        can_view = is_staff or seat is not None
    access = GroupAccess(seat=seat, is_staff=is_staff, is_alliance_member=alliance, can_view=can_view)
    if authenticated:
        if cache is None:
            cache = user._wg_access = {}
        cache[group.pk] = access
    return access


def redact_meetings(meetings, access: GroupAccess):
    """Blank the members-only fields of meetings (the online link) for whoever may not see them,
    so that no page, partial or feed built from these instances can show them. Each meeting keeps
    ``has_online_link`` so pages can say that a link exists. Returns ``meetings``."""
    if meetings is None:
        return None
    for meeting in [meetings] if isinstance(meetings, Meeting) else meetings:
        meeting.has_online_link = bool(meeting.online_url)
        if not access.can_see_links:
            meeting.online_url = ""
    return meetings


def forget_access(user) -> None:
    """Drop the cached answers after the user's seat changed (join, leave, role)."""
    for attr in ("_wg_access", "_wg_member_orgs"):
        if hasattr(user, attr):
            delattr(user, attr)


@rules.predicate
def can_view_group(user, group) -> bool:
    return group is not None and group_access(user, group).can_view


@rules.predicate
def can_manage_group(user, group) -> bool:
    return group is not None and group_access(user, group).can_manage


@rules.predicate
def can_organize_group(user, group) -> bool:
    return group is not None and group_access(user, group).can_organize


@rules.predicate
def is_group_member(user, group) -> bool:
    return group is not None and group_access(user, group).is_member


rules.add_perm("workinggroups.view_group", can_view_group)
rules.add_perm("workinggroups.manage_group", can_manage_group)
rules.add_perm("workinggroups.organize_group", can_organize_group)
rules.add_perm("workinggroups.contribute", is_group_member)
