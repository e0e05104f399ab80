"""Control characters are refused by every text field people can type into: every form of the
project (its own, the admin's, allauth's), every filter form and every DRF serializer. The test
walks them all, so a new form or serializer is checked the day it is written; the refusal itself
comes from ``apps.core.text`` (installed on every CharField), not from each form remembering it."""

from __future__ import annotations

import contextlib
import importlib
import pkgutil

import pytest
from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as APIValidationError

import apps
from apps.core.text import ControlCharacterValidator, forbidden_character

# C0 (single-line: also tab, CR, LF), DEL, C1, bidi override and isolate, line separator,
# non-characters and a lone surrogate (JSON "\ud800" decodes to one).
REFUSED_EVERYWHERE = [
    "\x00",
    "\x01",
    "\x07",
    "\x08",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x1f",
    "\x7f",
    "\x85",
    "\x9b",
    "\u202e",
    "\u202a",
    "\u2066",
    "\u2069",
    "\ufffe",
    "\uffff",
    "\U0010ffff",
    "\ud800",
]
REFUSED_IN_SINGLE_LINE = ["\t", "\n", "\r", "\u2028", "\u2029"]
ALLOWED = ["株式会社テスト", "Kyoto University", "O'Reilly & Sons", "東京\u3000大阪", "é", "😀", "\u200d"]


def _import_project_modules() -> None:
    for module in pkgutil.walk_packages(apps.__path__, "apps."):
        if ".migrations" in module.name or ".simulator" in module.name:
            continue
        importlib.import_module(module.name)
    for name in ("allauth.account.forms", "allauth.mfa.totp.forms", "allauth.mfa.recovery_codes.forms"):
        importlib.import_module(name)  # the sign-up, log-in, password and MFA forms people type into


def _subclasses(cls) -> list[type]:
    found, todo = [], [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def _form_classes() -> list[type]:
    _import_project_modules()
    classes = {
        c
        for c in _subclasses(forms.BaseForm)
        if c.__module__.startswith(("apps.", "allauth.account.forms", "allauth.mfa"))
        and not c.__name__.startswith("Base")
    }
    return sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _serializer_classes() -> list[type]:
    _import_project_modules()
    classes = {c for c in _subclasses(serializers.BaseSerializer) if c.__module__.startswith("apps.")}
    return sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _filterset_classes() -> list[type]:
    from django_filters import FilterSet

    _import_project_modules()
    return sorted(
        # A base class without a model (a shared parent of the real filter sets) builds no form.
        (c for c in _subclasses(FilterSet) if c.__module__.startswith("apps.") and c._meta.model is not None),
        key=lambda c: f"{c.__module__}.{c.__qualname__}",
    )


def _codes(exc: ValidationError) -> set[str]:
    return {e.code for e in exc.error_list}


def _assert_form_field_refuses(label: str, field: forms.Field) -> int:
    multiline = isinstance(field.widget, forms.Textarea)
    refused = REFUSED_EVERYWHERE + ([] if multiline else REFUSED_IN_SINGLE_LINE)
    for char in refused:
        with pytest.raises(ValidationError) as caught:
            field.run_validators(f"ab{char}cd")
        assert ControlCharacterValidator.code in _codes(caught.value), (label, repr(char))
    for text in ALLOWED + (["line 1\r\nline 2\tend"] if multiline else []):
        try:
            field.run_validators(text)
        except ValidationError as exc:
            assert ControlCharacterValidator.code not in _codes(exc), (label, text)
    return 1


def _form_text_fields(form_class):
    return [(name, f) for name, f in form_class.base_fields.items() if isinstance(f, forms.CharField)]


def test_the_walk_finds_the_projects_forms_and_serializers():
    names = {c.__name__ for c in _form_classes()}
    assert "SignupForm" in names and len(names) > 30
    assert len(_serializer_classes()) > 10


@pytest.mark.django_db
@pytest.mark.parametrize("form_class", _form_classes(), ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_text_field_of_every_form_refuses_control_characters(form_class):
    fields = dict(_form_text_fields(form_class))
    # The fields a form adds in __init__ too, where it can be built without arguments (one that
    # needs a request or an object has its declared fields walked).
    with contextlib.suppress(Exception):
        fields |= {n: f for n, f in form_class().fields.items() if isinstance(f, forms.CharField)}
    for name, field in fields.items():
        _assert_form_field_refuses(f"{form_class.__name__}.{name}", field)


@pytest.mark.django_db
def test_every_text_field_of_every_admin_form_refuses_control_characters(admin_user):
    request = RequestFactory().get("/")
    request.user = admin_user
    checked = 0
    for model, model_admin in admin.site._registry.items():
        if not model.__module__.startswith("apps."):
            continue
        form_class = model_admin.get_form(request, None)
        for name, field in _form_text_fields(form_class):
            checked += _assert_form_field_refuses(f"admin {model.__name__}.{name}", field)
        for inline in model_admin.get_inline_instances(request, None):
            for name, field in _form_text_fields(inline.get_formset(request, None).form):
                checked += _assert_form_field_refuses(f"admin inline {inline.model.__name__}.{name}", field)
    assert checked > 20


@pytest.mark.parametrize("filterset", _filterset_classes(), ids=lambda c: c.__qualname__)
def test_every_text_filter_refuses_control_characters(filterset):
    for name, field in filterset().form.fields.items():
        if isinstance(field, forms.CharField):
            _assert_form_field_refuses(f"{filterset.__name__}.{name}", field)


def _writable_text_fields(serializer, prefix=""):
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        if isinstance(field, serializers.BaseSerializer):
            child = getattr(field, "child", field)
            yield from _writable_text_fields(child, f"{prefix}{name}.")
        elif isinstance(field, serializers.ListField) and isinstance(field.child, serializers.CharField):
            yield f"{prefix}{name}[]", field.child
        elif isinstance(field, serializers.CharField):
            yield f"{prefix}{name}", field


@pytest.mark.django_db
@pytest.mark.parametrize("serializer_class", _serializer_classes(), ids=lambda c: c.__qualname__)
def test_every_text_field_of_every_serializer_refuses_control_characters(serializer_class):
    try:
        serializer = serializer_class()
    except TypeError:
        serializer = serializer_class(context={})
    for label, field in _writable_text_fields(serializer):
        multiline = (field.style or {}).get("base_template") == "textarea.html"
        refused = REFUSED_EVERYWHERE + ([] if multiline else REFUSED_IN_SINGLE_LINE)
        for char in refused:
            with pytest.raises(APIValidationError) as caught:
                field.run_validation(f"ab{char}cd")
            codes = {getattr(d, "code", None) for d in caught.value.detail}
            assert ControlCharacterValidator.code in codes, (serializer_class.__name__, label, repr(char))
        for text in ALLOWED:
            try:
                field.run_validation(text)
            except APIValidationError as exc:
                codes = {getattr(d, "code", None) for d in exc.detail}
                assert ControlCharacterValidator.code not in codes, (label, text)


# --- the validator itself -----------------------------------------------------------------------------


@pytest.mark.parametrize("char", REFUSED_EVERYWHERE)
def test_refused_in_any_text(char):
    assert forbidden_character(f"a{char}b", multiline=True) == char
    assert forbidden_character(f"a{char}b", multiline=False) == char


@pytest.mark.parametrize("char", REFUSED_IN_SINGLE_LINE)
def test_line_breaks_and_tabs_only_in_multi_line_text(char):
    assert forbidden_character(f"a{char}b", multiline=False) == char
    assert forbidden_character(f"a{char}b", multiline=True) is None


@pytest.mark.parametrize("text", ALLOWED)
def test_ordinary_text_passes(text):
    assert forbidden_character(text) is None


def test_the_message_names_the_character_in_japanese_and_english():
    from django.utils import translation

    validator = ControlCharacterValidator()
    for language, expected in (("ja", "制御文字"), ("en", "control or invisible formatting character")):
        with translation.override(language):
            with pytest.raises(ValidationError) as caught:
                validator("株式会社\x1bテスト")
            message = caught.value.messages[0]
        assert expected in message and "U+001B" in message
