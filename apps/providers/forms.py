from __future__ import annotations

from django import forms
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


class OrganizationChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.display_name} ({obj.slug})"


class GrantCreateForm(forms.Form):
    organization = OrganizationChoiceField(
        label=_("Organization"),
        queryset=None,
        to_field_name="slug",
        empty_label=_("Choose an organization"),
        help_text=_("Only organizations with an active membership can be granted quota."),
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
