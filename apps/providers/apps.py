from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProvidersConfig(AppConfig):
    name = "apps.providers"
    verbose_name = _("Providers")

    def ready(self) -> None:
        from apps.providers import permissions  # noqa: F401  registers the rules
