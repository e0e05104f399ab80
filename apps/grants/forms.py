from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from apps.grants.models import Application, Call
from apps.organizations.models import OrganizationKind
from apps.providers.models import ResourcePool

DATE = {"type": "date"}


class PoolChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.provider.display_name} · {obj.gpu_class} · {obj.code} ({obj.datacenter})"


class ApplicationForm(forms.Form):
    """The application to one call: the organization, the project, GPU-hours per class of the
    call's budget and the call's own questions. Drafts may be incomplete; submitting checks all."""

    organization = forms.ModelChoiceField(
        label=_("Organization"),
        queryset=None,
        required=False,
        empty_label=_("— my organization is not on the portal —"),
    )
    org_name_ja = forms.CharField(label=_("Organization name (Japanese)"), max_length=200, required=False)
    org_name_en = forms.CharField(label=_("Organization name (English)"), max_length=200, required=False)
    org_kind = forms.ChoiceField(
        label=_("Organization kind"), choices=[("", "—"), *OrganizationKind.choices], required=False
    )
    org_corporate_number = forms.CharField(
        label=_("Corporate number"), max_length=20, required=False, help_text=_("Optional for universities.")
    )
    founded_on = forms.DateField(
        label=_("Founded on"),
        required=False,
        widget=forms.DateInput(attrs=DATE),
        help_text=_("The date the company was registered."),
    )
    pi_name = forms.CharField(label=_("Principal investigator"), max_length=150)
    pi_email = forms.EmailField(label=_("Principal investigator's e-mail"))
    pi_position = forms.CharField(label=_("Position or title"), max_length=150, required=False)
    title = forms.CharField(label=_("Project title"), max_length=200)
    abstract = forms.CharField(label=_("Abstract"), max_length=3000, widget=forms.Textarea(attrs={"rows": 4}))
    plan = forms.CharField(
        label=_("Plan"),
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("Milestones, the GPU-hours each needs, and what success looks like."),
    )
    duration_months = forms.IntegerField(label=_("Duration (months)"), min_value=1, max_value=36)
    preferred_pools = PoolChoiceField(
        label=_("Preferred pools"),
        queryset=ResourcePool.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Optional: where you would like to compute (data residency, software)."),
    )

    def __init__(self, *args, call: Call, user, application: Application | None = None, **kwargs):
        self.call = call
        program = call.program
        if application is not None and not kwargs.get("initial"):
            kwargs["initial"] = self.initial_from(application)
        super().__init__(*args, **kwargs)
        from apps.grants.selectors import member_organizations_for

        self.fields["organization"].queryset = member_organizations_for(user=user)
        if not program.allows_non_members:
            self.fields["organization"].required = True
            self.fields["organization"].empty_label = None
            for name in ("org_name_ja", "org_name_en", "org_kind", "org_corporate_number"):
                del self.fields[name]
        if program.max_company_age_years is None:
            del self.fields["founded_on"]
        self.fields["duration_months"].max_value = program.max_duration_months
        self.fields["duration_months"].widget.attrs["max"] = program.max_duration_months
        self.fields["duration_months"].help_text = _("At most %(months)s months.") % {
            "months": program.max_duration_months
        }
        self.class_fields = []
        for gpu_class in call.gpu_classes():
            name = f"hours_{gpu_class}"
            self.fields[name] = forms.IntegerField(
                label=_("GPU-hours of %(cls)s") % {"cls": gpu_class}, min_value=0, required=False
            )
            self.class_fields.append(name)
        self.fields["preferred_pools"].queryset = (
            ResourcePool.objects.filter(
                gpu_class__in=call.gpu_classes(), is_active=True, provider__is_active=True
            )
            .select_related("provider")
            .order_by("gpu_class", "code")
        )
        self.question_fields = []
        for question in call.questions.all():
            self.fields[question.key] = forms.CharField(
                label=question.label,
                help_text=question.help,
                max_length=question.max_length,
                required=False,
                widget=forms.Textarea(attrs={"rows": 3}),
            )
            self.question_fields.append(question.key)

    @staticmethod
    def initial_from(application: Application) -> dict:
        initial = {
            name: getattr(application, name)
            for name in (
                "org_name_ja",
                "org_name_en",
                "org_kind",
                "org_corporate_number",
                "founded_on",
                "pi_name",
                "pi_email",
                "pi_position",
                "title",
                "abstract",
                "plan",
                "duration_months",
            )
        }
        initial["organization"] = application.organization_id
        initial["preferred_pools"] = [p.pk for p in application.preferred_pools.all()]
        for gpu_class, hours in (application.requested_hours or {}).items():
            initial[f"hours_{gpu_class}"] = hours
        initial.update(application.answers or {})
        return initial

    def clean(self):
        data = super().clean()
        typed = data.get("org_name_ja") and data.get("org_kind")
        if self.call.program.allows_non_members and not data.get("organization") and not typed:
            self.add_error(
                "org_name_ja",
                _("Choose one of your organizations, or give your organization's name and kind."),
            )
        return data

    def service_data(self) -> tuple[dict, list[int]]:
        data = self.cleaned_data
        values = {
            name: data.get(name) or ""
            for name in ("org_name_ja", "org_name_en", "org_kind", "org_corporate_number", "pi_position")
        }
        values.update(
            organization=data.get("organization"),
            founded_on=data.get("founded_on"),
            pi_name=data["pi_name"],
            pi_email=data["pi_email"],
            title=data["title"],
            abstract=data["abstract"],
            plan=data["plan"],
            duration_months=data["duration_months"],
            requested_hours={
                name.removeprefix("hours_"): data[name] for name in self.class_fields if data.get(name)
            },
            answers={key: data[key] for key in self.question_fields if data.get(key)},
        )
        return values, [p.pk for p in data.get("preferred_pools") or []]

    def class_bound_fields(self):
        return [self[name] for name in self.class_fields]

    def question_bound_fields(self):
        return [self[name] for name in self.question_fields]


class AttachmentForm(forms.Form):
    file = forms.FileField(label=_("Attachment"), help_text=_("PDF, PNG, JPEG or plain text; at most 10 MB."))


class WithdrawForm(forms.Form):
    reason = forms.CharField(label=_("Reason (optional)"), max_length=1000, required=False)


class ConflictForm(forms.Form):
    reason = forms.CharField(
        label=_("Conflict of interest"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For example: a co-author, a former colleague, a business relationship."),
        error_messages={"required": _("Describe the conflict of interest.")},
    )


class ReviewForm(forms.Form):
    comment = forms.CharField(
        label=_("Overall comment"), max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )

    def __init__(self, *args, criteria, scores=None, **kwargs):
        initial = kwargs.setdefault("initial", {})
        for score in scores or []:
            initial[f"score_{score.criterion_id}"] = score.score
            initial[f"comment_{score.criterion_id}"] = score.comment
        super().__init__(*args, **kwargs)
        self.criteria = list(criteria)
        self.rows = []
        for criterion in self.criteria:
            self.fields[f"score_{criterion.pk}"] = forms.IntegerField(
                label=_("Score (0 to %(max)s)") % {"max": criterion.max_score},
                min_value=0,
                max_value=criterion.max_score,
            )
            self.fields[f"comment_{criterion.pk}"] = forms.CharField(
                label=_("Comment"), max_length=3000, required=False, widget=forms.Textarea(attrs={"rows": 2})
            )
        self.rows = [
            (criterion, self[f"score_{criterion.pk}"], self[f"comment_{criterion.pk}"])
            for criterion in self.criteria
        ]

    def scores(self) -> dict[int, tuple[int, str]]:
        return {
            c.pk: (self.cleaned_data[f"score_{c.pk}"], self.cleaned_data.get(f"comment_{c.pk}", ""))
            for c in self.criteria
        }


class ReviewerAddForm(forms.Form):
    email = forms.EmailField(label=_("Reviewer's e-mail address"))

    def clean_email(self):
        email = self.cleaned_data["email"]
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            raise forms.ValidationError(_("There is no active account with this e-mail address."))
        self.user = user
        return email


class AssignForm(forms.Form):
    reviewer = forms.ModelChoiceField(label=_("Reviewer"), queryset=User.objects.none())

    def __init__(self, *args, users=(), **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["reviewer"]
        field.queryset = User.objects.filter(pk__in=[u.pk for u in users])
        field.choices = [("", "—"), *[(u.pk, u.email) for u in users]]


class DecisionForm(forms.Form):
    DECISIONS = [
        ("award", _("Award")),
        ("waitlist", _("Put on the waiting list")),
        ("decline", _("Decline")),
    ]
    decision = forms.ChoiceField(label=_("Decision"), choices=DECISIONS)
    feedback = forms.CharField(
        label=_("Feedback to the applicant"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Required when declining. Reviewers' names are never shown to applicants."),
    )
    valid_from = forms.DateField(
        label=_("Award starts on"), required=False, widget=forms.DateInput(attrs=DATE)
    )
    valid_until = forms.DateField(
        label=_("Award ends on"),
        required=False,
        widget=forms.DateInput(attrs=DATE),
        help_text=_("Exclusive: the first day without the GPU-hours."),
    )
    mentor_email = forms.EmailField(label=_("Mentor's e-mail address (optional)"), required=False)

    def __init__(self, *args, periods=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.period_rows = []
        for period in periods:
            name = f"period_{period.pk}"
            self.fields[name] = forms.DecimalField(
                label=str(period), min_value=0, max_digits=14, decimal_places=2, required=False
            )
            self.period_rows.append((period, self[name]))

    def clean(self):
        data = super().clean()
        self.mentor = None
        if data.get("decision") == "award":
            if not data.get("valid_from") or not data.get("valid_until"):
                self.add_error("valid_from", _("Give the award's start and end dates."))
            self.lines = [
                (period.pk, data[f"period_{period.pk}"])
                for period, _field in self.period_rows
                if data.get(f"period_{period.pk}")
            ]
            if not self.lines:
                self.add_error(None, _("Enter the GPU-hours to award on at least one pool."))
            email = data.get("mentor_email")
            if email:
                self.mentor = User.objects.filter(email__iexact=email, is_active=True).first()
                if self.mentor is None:
                    self.add_error("mentor_email", _("There is no active account with this e-mail address."))
        return data


class RevokeForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for revoking"),
        max_length=2000,
        error_messages={"required": _("Give a reason for revoking the award.")},
    )


class MentorForm(forms.Form):
    mentor_email = forms.EmailField(label=_("Mentor's e-mail address"))

    def clean_mentor_email(self):
        email = self.cleaned_data["mentor_email"]
        self.mentor = User.objects.filter(email__iexact=email, is_active=True).first()
        if self.mentor is None:
            raise forms.ValidationError(_("There is no active account with this e-mail address."))
        return email


class ReportForm(forms.Form):
    body = forms.CharField(label=_("Report"), max_length=20000, widget=forms.Textarea(attrs={"rows": 8}))
    outcomes = forms.CharField(
        label=_("Outcomes"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Results, products, follow-on funding, hires…"),
    )
    publications = forms.CharField(
        label=_("Publications"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line."),
    )
