from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.workinggroups.models import GroupMember, Industry, MemberSettings, Motion, WorkingGroup
from apps.workinggroups.uploads import MAX_UPLOAD_BYTES

DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


class DirectoryFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    industry = forms.ChoiceField(
        label=_("Industry"), required=False, choices=[("", _("All industries")), *Industry.choices]
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Proposed and active")), *WorkingGroup.Status.choices],
    )


class GroupForm(forms.ModelForm):
    class Meta:
        model = WorkingGroup
        fields = [
            "name_ja",
            "name_en",
            "industry",
            "charter_ja",
            "charter_en",
            "visibility",
            "join_policy",
            "allow_outside_researchers",
        ]
        widgets = {
            "charter_ja": forms.Textarea(attrs={"rows": 6}),
            "charter_en": forms.Textarea(attrs={"rows": 6}),
        }


class GroupCreateForm(GroupForm):
    slug = forms.SlugField(
        label=_("Short name (URL)"),
        required=False,
        help_text=_("Leave empty to derive it from the English name."),
    )
    chair_email = forms.EmailField(label=_("Chair's e-mail address"), required=False)

    class Meta(GroupForm.Meta):
        fields = ["slug", *GroupForm.Meta.fields]


class ChairForm(forms.Form):
    email = forms.EmailField(label=_("New chair's e-mail address"))


class CloseForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), required=False, max_length=500)


class JoinRequestForm(forms.Form):
    message = forms.CharField(
        label=_("Message to the chair"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class DecideForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", _("Approve")), ("reject", _("Decline"))])
    reason = forms.CharField(label=_("Reason"), required=False, max_length=1000)


class MemberAddForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"))
    role = forms.ChoiceField(
        label=_("Role"), choices=[c for c in GroupMember.Role.choices if c[0] != GroupMember.Role.CHAIR]
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(
        label=_("Role"), choices=[c for c in GroupMember.Role.choices if c[0] != GroupMember.Role.CHAIR]
    )


class MeetingForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    starts_at = forms.DateTimeField(
        label=_("Starts at (Japan time)"), widget=DATETIME_WIDGET, input_formats=DATETIME_FORMATS
    )
    ends_at = forms.DateTimeField(
        label=_("Ends at (Japan time)"), widget=DATETIME_WIDGET, input_formats=DATETIME_FORMATS
    )
    location = forms.CharField(label=_("Place"), max_length=300, required=False)
    online_url = forms.URLField(label=_("Online meeting link"), required=False, assume_scheme="https")
    agenda = forms.CharField(
        label=_("Agenda (Markdown)"), required=False, widget=forms.Textarea(attrs={"rows": 6})
    )
    cancelled = forms.BooleanField(label=_("Cancelled"), required=False)

    def clean(self):
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", _("A meeting must end after it starts."))
        return data


class MinutesForm(forms.Form):
    minutes = forms.CharField(
        label=_("Minutes (Markdown)"), required=False, widget=forms.Textarea(attrs={"rows": 12})
    )


class DocumentForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200, required=False)
    description = forms.CharField(
        label=_("Description"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    file = forms.FileField(
        label=_("File"), help_text=_("At most 20 MB: PDF, Office, text, Markdown, CSV, PNG, JPEG.")
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is too large (at most %(mb)d MB).") % {"mb": MAX_UPLOAD_BYTES // (1024 * 1024)}
            )
        return upload


class VersionForm(forms.Form):
    file = forms.FileField(label=_("New version"))
    note = forms.CharField(label=_("What changed"), required=False, max_length=300)


class ThreadForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(
        label=_("Message (Markdown)"), max_length=20000, widget=forms.Textarea(attrs={"rows": 5})
    )


class PostForm(forms.Form):
    body = forms.CharField(
        label=_("Reply (Markdown)"), max_length=20000, widget=forms.Textarea(attrs={"rows": 4})
    )


class SettingsForm(forms.Form):
    notify = forms.ChoiceField(
        label=_("E-mails about new discussion messages"),
        choices=MemberSettings.Notify.choices,
        widget=forms.RadioSelect,
    )


class MotionForm(forms.Form):
    title = forms.CharField(label=_("Motion"), max_length=200)
    description = forms.CharField(
        label=_("Explanation (Markdown)"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    options = forms.CharField(
        label=_("Options, one per line"),
        initial="賛成 / For\n反対 / Against\n棄権 / Abstain",
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    scope = forms.ChoiceField(label=_("Ballots"), choices=Motion.Scope.choices)
    is_secret = forms.BooleanField(label=_("Secret ballot"), required=False)
    opens_at = forms.DateTimeField(
        label=_("Opens at (Japan time)"), widget=DATETIME_WIDGET, input_formats=DATETIME_FORMATS
    )
    closes_at = forms.DateTimeField(
        label=_("Closes at (Japan time)"), widget=DATETIME_WIDGET, input_formats=DATETIME_FORMATS
    )
    quorum_kind = forms.ChoiceField(label=_("Quorum"), choices=Motion.QuorumKind.choices)
    quorum_value = forms.IntegerField(label=_("Quorum value"), min_value=1, max_value=10000, initial=1)

    def clean(self):
        data = super().clean()
        opens, closes = data.get("opens_at"), data.get("closes_at")
        if opens and closes and closes <= opens:
            self.add_error("closes_at", _("Voting must close after it opens."))
        if data.get("quorum_kind") == Motion.QuorumKind.PERCENT and (data.get("quorum_value") or 0) > 100:
            self.add_error("quorum_value", _("A share is at most 100 %."))
        lines = [line.strip() for line in (data.get("options") or "").splitlines() if line.strip()]
        if len(set(lines)) < 2:
            self.add_error("options", _("A motion needs at least two different options."))
        data["option_list"] = lines
        return data


class BallotForm(forms.Form):
    option = forms.TypedChoiceField(label=_("Your vote"), coerce=int, widget=forms.RadioSelect)

    def __init__(self, *args, motion: Motion, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["option"].choices = [(o.pk, o.label) for o in motion.options.all()]
