from django.apps import apps as django_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

from apps.accounts.models import User
from apps.governance.services import audit_record


@transaction.atomic
def user_update_profile(*, user: User, full_name: str | None = None, language: str | None = None) -> User:
    before = {"full_name": user.full_name, "language": user.language}
    if full_name is not None:
        user.full_name = full_name
    if language is not None:
        user.language = language
    after = {"full_name": user.full_name, "language": user.language}
    if after != before:
        user.save(update_fields=["full_name", "language"])
        audit_record(actor=user, action="user.profile_updated", target=user, before=before, after=after)
    return user


# The secretariat's Django admin rights (docs/decisions.md, "Superusers"): staff do their work as
# staff (is_staff) in this group, never as superusers. Full model rights in the apps they run;
# read-only where history or accounts live (the audit log is append-only anyway; promoting users
# or editing their groups stays with superusers, i.e. maintenance).
SECRETARIAT_GROUP = "Secretariat"
SECRETARIAT_FULL_APPS = ("organizations", "allocations", "providers", "grants", "workinggroups", "reports")
SECRETARIAT_VIEW_APPS = ("governance", "accounts", "api", "account")


def secretariat_permissions():
    return Permission.objects.filter(
        Q(content_type__app_label__in=SECRETARIAT_FULL_APPS)
        | Q(content_type__app_label__in=SECRETARIAT_VIEW_APPS, codename__startswith="view_")
    )


@transaction.atomic
def secretariat_group_ensure(*, actor: User | None = None, members=()) -> Group:
    """Create or refresh the secretariat group with its permissions; add ``members`` (made staff)."""
    # Permissions are created after migrate; make sure they exist when called right after it.
    for config in django_apps.get_app_configs():
        create_permissions(config, verbosity=0)
    group, created = Group.objects.get_or_create(name=SECRETARIAT_GROUP)
    wanted = set(secretariat_permissions().values_list("pk", flat=True))
    current = set(group.permissions.values_list("pk", flat=True))
    if wanted != current:
        group.permissions.set(wanted)
        audit_record(
            actor=actor,
            action="group.permissions_set",
            target=group,
            before={"permissions": len(current)},
            after={"permissions": len(wanted), "created": created},
        )
    for user in members:
        if not user.is_staff or not user.groups.filter(pk=group.pk).exists():
            user.is_staff = True
            user.save(update_fields=["is_staff"])
            user.groups.add(group)
            audit_record(
                actor=actor, action="user.secretariat_added", target=user, after={"group": group.name}
            )
    return group
