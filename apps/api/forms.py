from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.api.models import PersonalAccessToken
from apps.organizations.models import Organization, OrgRole


class OrganizationChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.display_name


class TokenCreateForm(forms.Form):
    LIFETIMES = [
        ("30", _("30 days")),
        ("90", _("90 days")),
        ("365", _("1 year")),
        ("", _("No expiry")),
    ]

    name = forms.CharField(
        label=_("Token name"),
        max_length=100,
        help_text=_("What will use it, for example “nightly usage export”."),
    )
    scope = forms.ChoiceField(
        label=_("Access"),
        choices=PersonalAccessToken.Scope.choices,
        initial=PersonalAccessToken.Scope.READ,
        widget=forms.RadioSelect,
        help_text=_("Read-write tokens can file, change and withdraw allocation requests."),
    )
    lifetime = forms.ChoiceField(label=_("Expires after"), choices=LIFETIMES, initial="90", required=False)
    organizations = OrganizationChoiceField(
        label=_("Organizations"),
        queryset=Organization.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave all unticked to reach every organization you belong to, now and later."),
    )

    def __init__(self, *args, user, **kwargs):
        kwargs.setdefault("prefix", "token")
        super().__init__(*args, **kwargs)
        self.fields["organizations"].queryset = Organization.objects.filter(
            pk__in=OrgRole.objects.filter(user=user).values("organization_id")
        ).order_by("name_en")

    def clean_lifetime(self) -> int | None:
        value = self.cleaned_data.get("lifetime")
        return int(value) if value else None
