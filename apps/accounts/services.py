from django.db import transaction

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
