from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "apps.api"
    verbose_name = _("Member API")

    def ready(self) -> None:
        from apps.api import (
            permissions,  # noqa: F401  registers the rules
            schema,  # noqa: F401  registers the OpenAPI extension of the token auth
        )
