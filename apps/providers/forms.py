from __future__ import annotations

from django import forms
from django.db.models import Q
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from apps.providers import selectors
from apps.providers.models import Provider, QuotaGrant, ResourcePool
from apps.providers.selectors import SyncState


class GrantFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False)
    sync = forms.ChoiceField(
        label=_("Sync state"), required=False, choices=[("", _("All sync states")), *SyncState.choices]
    )
    state = forms.ChoiceField(
        label=_("State"), required=False, choices=[("", _("All states")), *QuotaGrant.State.choices]
    )
    provider = forms.ChoiceField(label=_("Provider"), required=False)
    pool = forms.ChoiceField(label=_("Pool"), required=False)
    organization = forms.CharField(label=_("Organization (slug)"), required=False, max_length=80)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", _("All providers"))] + [
            (p.slug, p.display_name) for p in Provider.objects.order_by("name_en")
        ]
        self.fields["pool"].choices = [("", _("All pools"))] + [
            (code, f"{code} ({gpu_class})")
            for code, gpu_class in ResourcePool.objects.order_by("code").values_list("code", "gpu_class")
        ]


class ConsoleFilterForm(forms.Form):
    """The provider console's filter: only what concerns the provider's own grants."""

    q = forms.CharField(label=_("Search"), required=False)
    sync = GrantFilterForm.base_fields["sync"]
    state = GrantFilterForm.base_fields["state"]


class DriftFilterForm(forms.Form):
    provider = forms.ChoiceField(label=_("Provider"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", _("All providers"))] + [
            (p.slug, p.display_name) for p in Provider.objects.order_by("name_en")
        ]


class PeriodChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        pool = obj.pool
        return (
            f"{pool.provider.display_name} · {pool.code} ({pool.gpu_class}) · "
            f"{obj.starts_on:%Y-%m-%d} – {obj.ends_on:%Y-%m-%d} · "
            + str(_("capacity %(hours)s GPU-hours") % {"hours": obj.capacity_gpu_hours})
        )


class OrganizationSearchInput(forms.TextInput):
    """A text input for an organization's slug that offers the matching organizations as the user
    types: htmx fills the page's ``<datalist id="organization-options">`` from the search endpoint
    (the browser's own suggestion list, usable with the keyboard). Without JavaScript one types the
    slug or the exact name, or finds it on the search page, which links back with it filled in."""

    def __init__(self, attrs=None):
        super().__init__(
            {
                "autocomplete": "off",
                "spellcheck": "false",
                "list": "organization-options",
                "hx-get": reverse_lazy("providers:grant-org-search"),
                "hx-trigger": "input changed delay:250ms, focus once",
                "hx-target": "#organization-options",
                "hx-swap": "innerHTML",
                **(attrs or {}),
            }
        )


class OrganizationChoiceField(forms.ModelChoiceField):
    """An organization with an active membership, by its slug or its exact (Japanese or English)
    name; validated on the server whatever the browser offered."""

    widget = OrganizationSearchInput

    def to_python(self, value):
        value = (value or "").strip()
        if value in self.empty_values:
            return None
        organization = self.queryset.filter(slug=value).first() if len(value) <= 80 else None
        if organization is None:
            named = list(self.queryset.filter(Q(name_ja__iexact=value) | Q(name_en__iexact=value))[:2])
            organization = named[0] if len(named) == 1 else None
        if organization is None:
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return organization

    def prepare_value(self, value):
        return getattr(value, "slug", value)


class GrantCreateForm(forms.Form):
    organization = OrganizationChoiceField(
        label=_("Organization"),
        queryset=None,
        to_field_name="slug",
        help_text=_(
            "Type a few letters of the name and choose from the suggestions, or type the organization's "
            "slug. Only organizations with an active membership can be granted quota."
        ),
        error_messages={
            "invalid_choice": _("No organization with an active membership has this slug or name."),
        },
    )
    period = PeriodChoiceField(
        label=_("Pool and period"), queryset=None, empty_label=_("Choose a pool period")
    )
    gpu_hours = forms.DecimalField(label=_("GPU-hours"), min_value=0.01, max_digits=14, decimal_places=2)
    valid_from = forms.DateField(
        label=_("Valid from"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Empty: the start of the period."),
    )
    valid_until = forms.DateField(
        label=_("Valid until (exclusive)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Empty: the end of the period."),
    )
    source_ref = forms.CharField(
        label=_("Reference"),
        required=False,
        max_length=100,
        help_text=_("Optional: a ticket or decision this grant comes from."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = selectors.organization_list_for_granting()
        self.fields["period"].queryset = selectors.period_list_for_granting()


class GrantRevokeForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for revoking"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": _("Please give a reason; it is kept in the audit log.")},
    )


class DriftAcceptForm(forms.Form):
    note = forms.CharField(
        label=_("Why the difference is acceptable"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 1}),
        error_messages={"required": _("Please give a note; it is kept in the audit log.")},
    )


class OrganizationSearchForm(forms.Form):
    """The grant form's organization search (``q``, or ``organization`` from the form's own field).
    Its text fields refuse control characters like every other (apps.core.text): a bad query finds
    nothing rather than reaching the database."""

    q = forms.CharField(required=False, max_length=100, strip=True)
    organization = forms.CharField(required=False, max_length=100, strip=True)

    def query(self) -> str:
        if not self.is_valid():
            return ""
        return self.cleaned_data["q"] or self.cleaned_data["organization"]


class DriftIdsField(forms.Field):
    """The ticked differences: a list of drift ids (``drift`` checkboxes)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        if value in (None, "", []):
            return []
        values = value if isinstance(value, list | tuple) else [value]
        ids = []
        for item in values:
            if not str(item).isdigit() or len(str(item)) > 18:
                raise forms.ValidationError(_("Select differences from the list."), code="invalid")
            ids.append(int(item))
        return ids


class DriftBulkForm(forms.Form):
    """Resend or accept many differences at once: the ticked ones, or every open one that the
    list's filter shows."""

    ACTIONS = [("resend", _("Resend the portal's version")), ("accept", _("Accept the differences"))]

    action = forms.ChoiceField(label=_("Action"), choices=ACTIONS)
    drift = DriftIdsField(label=_("Differences"), required=False)
    all_matching = forms.BooleanField(
        label=_("Every open difference the filter shows (up to 500), not only the ticked ones"),
        required=False,
    )
    provider = forms.CharField(required=False, max_length=50, widget=forms.HiddenInput)
    note = forms.CharField(
        label=_("Why the differences are acceptable (required to accept)"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 1}),
    )

    def clean(self):
        data = super().clean()
        if not self.errors:
            if not data.get("drift") and not data.get("all_matching"):
                raise forms.ValidationError(_("Select at least one difference."), code="empty")
            if data.get("action") == "accept" and not (data.get("note") or "").strip():
                self.add_error("note", _("Please give a note; it is kept in the audit log."))
        return data
