"""Factories of the member API: tokens are made through the service (hash, audit event)."""

import factory

from apps.api import services
from apps.api.models import PersonalAccessToken
from tests.factories import UserFactory


class TokenFactory(factory.django.DjangoModelFactory):
    """``TokenFactory(user=…, scope="write", organizations=[org])``; the secret is on ``.secret``."""

    class Meta:
        model = PersonalAccessToken

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"script {n}")
    scope = "read"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        organizations = kwargs.pop("organizations", None) or []
        token, secret = services.token_create(
            user=kwargs["user"],
            name=kwargs["name"],
            scope=kwargs["scope"],
            expires_in_days=kwargs.get("expires_in_days"),
            organization_ids=[o.pk for o in organizations],
        )
        token.secret = secret
        return token
