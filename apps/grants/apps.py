from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GrantsConfig(AppConfig):
    name = "apps.grants"
    verbose_name = _("Grant programs")

    def ready(self) -> None:
        from apps.grants import permissions  # noqa: F401  registers the rules
