from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class SignupExtraForm(forms.Form):
    """Extra fields on allauth's sign-up form."""

    full_name = forms.CharField(label=_("Full name"), max_length=150)
    language = forms.ChoiceField(label=_("Preferred language"), choices=settings.LANGUAGES, initial="ja")

    def signup(self, request, user):
        user.full_name = self.cleaned_data["full_name"]
        user.language = self.cleaned_data["language"]
        user.save(update_fields=["full_name", "language"])


class ProfileForm(forms.Form):
    full_name = forms.CharField(label=_("Full name"), max_length=150)
    language = forms.ChoiceField(label=_("Preferred language"), choices=settings.LANGUAGES)
