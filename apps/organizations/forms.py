from django import forms
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.validators import normalize_corporate_number, validate_corporate_number
from apps.organizations.models import (
    MembershipApplication,
    MembershipTier,
    Organization,
    OrganizationKind,
    OrgRole,
)
from apps.providers.models import Provider


def _https_urls(field, **kwargs):
    """Model URL fields become form fields that assume https:// when the scheme is left out."""
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class ApplicationForm(forms.ModelForm):
    # Longer than 13 so that hyphens and spaces can be typed; normalized in clean_corporate_number.
    corporate_number = forms.CharField(
        label=_("Corporate number"),
        max_length=20,
        required=False,
        help_text=_("13 digits (法人番号). Required for enterprises and startups."),
    )

    class Meta:
        model = MembershipApplication
        formfield_callback = _https_urls
        fields = [
            "name_ja",
            "name_en",
            "kind",
            "corporate_number",
            "postal_code",
            "address",
            "website",
            "home_provider",
            "requested_tier",
            "contact_name",
            "contact_email",
            "contact_phone",
            "technical_contact_email",
            "intended_use",
        ]
        widgets = {"intended_use": forms.Textarea(attrs={"rows": 4})}
        help_texts = {
            "home_provider": _("The provider you contract with; quota on other providers is resold to you."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["home_provider"].queryset = Provider.objects.filter(is_active=True).order_by("name_en")
        self.fields["home_provider"].empty_label = _("Choose a provider")
        self.fields["requested_tier"].choices = [
            c for c in MembershipTier.choices if c[0] != MembershipTier.FOUNDING
        ]

    def clean_corporate_number(self):
        value = normalize_corporate_number(self.cleaned_data.get("corporate_number", ""))
        if value:
            validate_corporate_number(value)
        return value

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if (
            kind
            and OrganizationKind.requires_corporate_number(kind)
            and not cleaned.get("corporate_number")
            and "corporate_number" not in self.errors
        ):
            self.add_error("corporate_number", _("Companies must give their 13-digit corporate number."))
        return cleaned


class SubmitForm(forms.Form):
    accept_terms = forms.BooleanField(
        label=_("I have read and accept the participation conditions."),
        required=True,
        error_messages={
            "required": _("You must accept the participation conditions to submit the application.")
        },
    )


class WithdrawForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (optional)"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class ReviewDecisionForm(forms.Form):
    DECISIONS = [
        ("approve", _("Approve")),
        ("request_changes", _("Request changes")),
        ("reject", _("Reject")),
    ]
    decision = forms.ChoiceField(label=_("Decision"), choices=DECISIONS)
    reason = forms.CharField(
        label=_("Reason / message to the applicant"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    tier = forms.ChoiceField(label=_("Membership tier"), choices=MembershipTier.choices, required=False)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") in ("request_changes", "reject") and not cleaned.get("reason", "").strip():
            self.add_error("reason", _("Please give a reason; the applicant will read it."))
        return cleaned


class ReviewFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False)
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Needs attention"))]
        + [c for c in MembershipApplication.Status.choices if c[0] != MembershipApplication.Status.DRAFT],
    )
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("All kinds")), *OrganizationKind.choices]
    )


class DirectoryFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False)
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("All kinds")), *OrganizationKind.choices]
    )
    provider = forms.ChoiceField(label=_("Home provider"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", _("All providers"))] + [
            (p.slug, p.display_name) for p in Provider.objects.filter(is_active=True).order_by("name_en")
        ]


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"))
    role = forms.ChoiceField(
        label=_("Role"),
        choices=[c for c in OrgRole.Role.choices if c[0] != OrgRole.Role.OWNER],
        initial="member",
    )


class OrganizationProfileForm(forms.ModelForm):
    class Meta:
        model = Organization
        formfield_callback = _https_urls
        fields = [
            "name_ja",
            "name_en",
            "postal_code",
            "address",
            "website",
            "is_listed",
            "show_website",
            "show_address",
            "description_ja",
            "description_en",
        ]
        widgets = {
            "description_ja": forms.Textarea(attrs={"rows": 3}),
            "description_en": forms.Textarea(attrs={"rows": 3}),
        }
