from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkingGroupsConfig(AppConfig):
    name = "apps.workinggroups"
    verbose_name = _("Working groups")

    def ready(self) -> None:
        from apps.workinggroups import permissions  # noqa: F401  registers the rules
