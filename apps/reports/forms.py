from django import forms
from django.utils.translation import gettext_lazy as _

from apps.providers.models import Provider


class UsageFilterForm(forms.Form):
    """Filters of the usage lists; an invalid value is ignored (the others still apply)."""

    month = forms.RegexField(
        label=_("Month"),
        regex=r"^\d{4}-(0[1-9]|1[0-2])$",
        required=False,
        widget=forms.TextInput(attrs={"type": "month"}),
        error_messages={"invalid": _("Enter a month as YYYY-MM.")},
    )
    provider = forms.ChoiceField(label=_("Provider"), required=False)
    organization = forms.SlugField(label=_("Organization (slug)"), required=False, max_length=80)
    gpu_class = forms.CharField(label=_("GPU class"), required=False, max_length=40)

    def __init__(self, *args, scoped_to_org: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", _("All providers"))] + [
            (p.slug, p.display_name) for p in Provider.objects.order_by("name_en")
        ]
        if scoped_to_org:
            del self.fields["organization"]


class AuditFilterForm(forms.Form):
    action = forms.CharField(label=_("Action (prefix)"), required=False, max_length=100)
    actor = forms.CharField(label=_("Actor (e-mail)"), required=False, max_length=255)
    target_type = forms.CharField(label=_("Object type"), required=False, max_length=100)
    target_id = forms.CharField(label=_("Object id"), required=False, max_length=64)
