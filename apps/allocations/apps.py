from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AllocationsConfig(AppConfig):
    name = "apps.allocations"
    verbose_name = _("Allocations")

    def ready(self) -> None:
        from apps.allocations import permissions  # noqa: F401  registers the rules
