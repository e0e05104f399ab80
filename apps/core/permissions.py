"""The one way the portal asks "may this person do that?" (docs/decisions.md, "Superusers").

Django's ``User.has_perm`` answers True for every active superuser before any backend is asked, so
a superuser flag would short-circuit every ``rules`` predicate: edit any organization, read any
reviewer's page, revoke anyone's token. The portal's own permissions (those registered with
``rules.add_perm``) are therefore decided by their predicate alone, whoever asks. The superuser
flag keeps its meaning only for Django's model permissions, i.e. the admin site and maintenance.
"""

from __future__ import annotations

from functools import lru_cache

import rules
from django.apps import apps


def has_perm(user, name: str, obj=None) -> bool:
    """Whether ``user`` holds the portal permission ``name`` (on ``obj``), by its predicate only.

    A deactivated account holds nothing; anonymous visitors are asked like anyone else (public
    pages have predicates that let them in)."""
    if user is None:
        return False
    if getattr(user, "is_authenticated", False) and not user.is_active:
        return False
    return rules.has_perm(name, user, obj)


@lru_cache(maxsize=1)
def model_permission_names() -> frozenset[str]:
    """``app_label.codename`` of every model permission Django creates (the admin's vocabulary)."""
    names = set()
    for model in apps.get_models():
        opts = model._meta
        for action in opts.default_permissions:
            names.add(f"{opts.app_label}.{action}_{opts.model_name}")
        for codename, _label in opts.permissions:
            names.add(f"{opts.app_label}.{codename}")
    return frozenset(names)


def is_portal_check(name: str, obj) -> bool:
    """A check the rules predicates decide alone: any object-level check of a portal permission,
    and a global one unless Django's admin uses the same name for a model permission."""
    if not rules.perm_exists(name):
        return False
    return obj is not None or name not in model_permission_names()
