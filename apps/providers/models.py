from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel


class Provider(BaseModel):
    """A GPU cloud provider of the alliance. Members contract with one as their home provider.

    Minimal for onboarding; pools, adapters and sync come with the provider integration.
    """

    slug = models.SlugField(_("slug"), unique=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    homepage = models.URLField(_("home page"), blank=True)
    description_ja = models.TextField(_("description (Japanese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name_en"]
        verbose_name = _("provider")
        verbose_name_plural = _("providers")

    def __str__(self) -> str:
        return self.name_ja

    @property
    def display_name(self) -> str:
        from django.utils.translation import get_language

        return self.name_en if (get_language() or "ja").startswith("en") else self.name_ja
