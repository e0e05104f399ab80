from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.allocations.models import FairSharePolicy
from apps.organizations.models import OrganizationKind
from apps.providers.models import ResourcePool


class RoundCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    fiscal_year = forms.IntegerField(
        label=_("Fiscal year"),
        min_value=2000,
        max_value=2999,
        help_text=_("The Japanese fiscal year: 2026 runs from 1 April 2026 to 31 March 2027."),
    )
    period_start = forms.DateField(
        label=_("Period starts on"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The first day of a month."),
    )
    period_end = forms.DateField(
        label=_("Period ends on"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Exclusive: the first day of the month after the period."),
    )
    policy = forms.ModelChoiceField(
        label=_("Fair-share policy"),
        queryset=FairSharePolicy.objects.none(),
        required=False,
        empty_label=_("The default policy"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["policy"].queryset = FairSharePolicy.objects.order_by("-is_default", "name")


class PoolChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.provider.display_name} · {obj.code} ({obj.datacenter})"


class RequestForm(forms.Form):
    """One organization's request for one GPU class (the class comes from the URL or the row)."""

    demand_gpu_hours = forms.IntegerField(label=_("Demand (GPU-hours)"), min_value=1)
    floor_gpu_hours = forms.IntegerField(
        label=_("Guaranteed floor (GPU-hours)"),
        min_value=0,
        required=False,
        help_text=_("Optional: the least that is useful to you; it is given first if capacity allows."),
    )
    justification = forms.CharField(
        label=_("Justification"), widget=forms.Textarea(attrs={"rows": 3}), max_length=5000
    )
    eligible_pools = PoolChoiceField(
        label=_("Eligible pools"),
        queryset=ResourcePool.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave all unticked to accept every pool of the class."),
    )

    def __init__(self, *args, gpu_class: str, pools=None, **kwargs):
        kwargs.setdefault("prefix", f"req-{gpu_class}")
        super().__init__(*args, **kwargs)
        self.gpu_class = gpu_class
        queryset = ResourcePool.objects.filter(
            gpu_class=gpu_class, is_active=True, provider__is_active=True
        ).select_related("provider")
        field = self.fields["eligible_pools"]
        field.queryset = queryset.order_by("code")
        if pools is not None:  # already loaded: spare the query when rendering the checkboxes
            field.choices = [(p.pk, field.label_from_instance(p)) for p in pools]

    def clean(self):
        data = super().clean()
        demand, floor = data.get("demand_gpu_hours"), data.get("floor_gpu_hours")
        if demand is not None and floor is not None and floor > demand:
            self.add_error("floor_gpu_hours", _("The guaranteed floor cannot exceed the demand."))
        return data


class AdjustForm(forms.Form):
    amount = forms.IntegerField(label=_("Amount (GPU-hours)"), min_value=0)
    reason = forms.CharField(
        label=_("Reason for the adjustment"),
        max_length=1000,
        error_messages={"required": _("Give a reason for the adjustment.")},
    )


class ResultFilterForm(forms.Form):
    """The filter of a round's result list (page and export): organization name, GPU class,
    provider, pool, organization kind and whether the demand was met. The choices come from the
    round's own pools (``round_pools``, already loaded by the page: no query here)."""

    MET, UNMET = "met", "unmet"

    q = forms.CharField(label=_("Organization"), required=False, max_length=100)
    gpu_class = forms.ChoiceField(label=_("GPU class"), required=False)
    provider = forms.ChoiceField(label=_("Provider"), required=False)
    pool = forms.ChoiceField(label=_("Pool"), required=False)
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("All kinds")), *OrganizationKind.choices]
    )
    met = forms.ChoiceField(
        label=_("Demand"),
        required=False,
        choices=[("", _("Met or not")), (MET, _("Demand met")), (UNMET, _("Demand not met"))],
    )

    def __init__(self, *args, round_pools=(), gpu_classes=(), **kwargs):
        super().__init__(*args, **kwargs)
        pools = [rp.pool for rp in round_pools]
        providers = {p.provider.slug: p.provider.display_name for p in pools}
        self.fields["gpu_class"].choices = [("", _("All GPU classes"))] + [
            (c, c) for c in sorted({p.gpu_class for p in pools} | set(gpu_classes))
        ]
        self.fields["provider"].choices = [
            ("", _("All providers")),
            *sorted(providers.items(), key=lambda item: item[1]),
        ]
        self.fields["pool"].choices = [("", _("All pools"))] + [
            (p.code, f"{p.code} ({p.gpu_class})") for p in sorted(pools, key=lambda p: p.code)
        ]
