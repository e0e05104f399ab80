"""Text that people type, and text that leaves the portal in files.

Input: ``ControlCharacterValidator`` refuses the characters no name, title or note needs and that
break what the text later flows into (XLSX/XML, e-mail headers, PostgreSQL, a reader's screen):
C0 controls (a multi-line text keeps tab, line feed and carriage return), DEL and C1 controls,
lone surrogates, Unicode non-characters (U+FFFE, U+FFFF, …), the line and paragraph separators in
single-line text, and the bidirectional embeddings, overrides and isolates that make text read
differently from what it is ("Trojan source"). ``install_text_validators`` gives every text field
of every Django form and DRF serializer that validator (see ``apps.core.apps``); a field is
multi-line when it is rendered as a textarea (Django: a ``Textarea`` widget; DRF: the
``textarea.html`` style that ModelSerializer gives a model's TextField).

Output: ``sanitize_cell_text`` replaces what XML 1.0 cannot hold (so an XLSX export never fails on
an old row) and ``escape_formula`` neutralises a text cell that a spreadsheet would read as a
formula (OWASP's CSV-injection advice, as pretix's exporters do).
"""

from __future__ import annotations

import functools
import re

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _

_BIDI = "\u202a-\u202e\u2066-\u2069"  # embeddings, overrides (LRE…RLO) and isolates (LRI…PDI)
_NONCHARACTERS = "\ufdd0-\ufdef\ufffe\uffff"  # plus U+nFFFE/U+nFFFF of the other planes (below)
_SURROGATES = "\ud800-\udfff"
_SINGLE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}{_NONCHARACTERS}{_SURROGATES}]")
_MULTI_LINE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}{_NONCHARACTERS}{_SURROGATES}]")
_PLANE_NONCHARACTER = re.compile(
    "[" + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(1, 17)) + "]"
)


def forbidden_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character of ``value`` that text input refuses, or None."""
    found = (_MULTI_LINE if multiline else _SINGLE_LINE).search(value) or _PLANE_NONCHARACTER.search(value)
    return found.group() if found else None


@deconstructible
class ControlCharacterValidator:
    """Refuses control and invisible formatting characters (see the module's docstring)."""

    code = "control_character"

    def __init__(self, *, multiline: bool = False):
        self.multiline = multiline

    def __call__(self, value) -> None:
        if not isinstance(value, str):
            return
        char = forbidden_character(value, multiline=self.multiline)
        if char is not None:
            raise ValidationError(
                _(
                    "This text contains a control or invisible formatting character (%(char)s) that is "
                    "not allowed; please remove it."
                ),
                code=self.code,
                params={"char": f"U+{ord(char):04X}"},
            )

    def __eq__(self, other) -> bool:
        return isinstance(other, ControlCharacterValidator) and other.multiline == self.multiline

    def __hash__(self) -> int:
        return hash((ControlCharacterValidator, self.multiline))


validate_single_line_text = ControlCharacterValidator(multiline=False)
validate_multi_line_text = ControlCharacterValidator(multiline=True)


# --- every form and serializer field gets it --------------------------------------------------------


def form_field_multiline(field) -> bool:
    from django import forms

    return isinstance(field.widget, forms.Textarea)


def serializer_field_multiline(field) -> bool:
    return (getattr(field, "style", None) or {}).get("base_template") == "textarea.html"


def _check(field, value, is_multiline) -> None:
    (validate_multi_line_text if is_multiline(field) else validate_single_line_text)(value)


def _patch_form_fields(cls) -> None:
    """After a form field's own validators (their errors and this one are reported together), the
    control-character check, multi-line or not as the field is rendered *now* (a form may swap a
    widget after the field was built)."""
    original = cls.run_validators
    if getattr(original, "_control_characters", False):
        return

    @functools.wraps(original)
    def run_validators(self, value):
        errors = []
        for check in (lambda: original(self, value), lambda: _check(self, value, form_field_multiline)):
            try:
                check()
            except ValidationError as exc:
                errors.extend(exc.error_list)
        if errors:
            raise ValidationError(errors)

    run_validators._control_characters = True
    cls.run_validators = run_validators


def _patch_serializer_fields(cls) -> None:
    """The same for a DRF serializer field (its errors are DRF's, with their codes)."""
    from rest_framework.exceptions import ValidationError as APIValidationError
    from rest_framework.fields import get_error_detail

    original = cls.run_validators
    if getattr(original, "_control_characters", False):
        return

    @functools.wraps(original)
    def run_validators(self, value):
        details = []
        try:
            original(self, value)
        except APIValidationError as exc:
            details.extend(exc.detail if isinstance(exc.detail, list) else [exc.detail])
        try:
            _check(self, value, serializer_field_multiline)
        except ValidationError as exc:
            details.extend(get_error_detail(exc))
        if details:
            raise APIValidationError(details)

    run_validators._control_characters = True
    cls.run_validators = run_validators


def install_text_validators() -> None:
    """Give every text field of every form and serializer the control-character check, as Django's
    own ``forms.CharField`` gives each one ``ProhibitNullCharactersValidator``: so a new form or
    serializer, the admin's and allauth's included, is covered without anyone having to think of
    it (``tests/core/test_text_input.py`` walks them all). Idempotent; called from
    ``CoreConfig.ready``."""
    from django import forms

    _patch_form_fields(forms.CharField)  # EmailField, SlugField, URLField, JSONField … inherit it
    try:
        from rest_framework import serializers
    except ImportError:  # pragma: no cover - DRF is a dependency; keep core importable without it
        return
    _patch_serializer_fields(serializers.CharField)  # EmailField, SlugField, RegexField … inherit it


# --- text that goes into export files ----------------------------------------------------------------

# What XML 1.0 cannot hold (openpyxl refuses it: one such character made an XLSX export answer 500).
XML_ILLEGAL = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff{_SURROGATES}]")
REPLACEMENT = "\ufffd"

# A cell whose text starts with one of these is a formula to Excel, LibreOffice or Google Sheets
# (after leading spaces, too); tab and carriage return start one in some importers. The full-width
# forms are included: Japanese input methods type them and some importers fold them.
_FORMULA_SIGNS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_LEADING_BLANKS = " \t\r\n\u3000"
# A text whose first character is none of these is never formula-like (the writers' fast path).
MAYBE_FORMULA_FIRST = frozenset(_FORMULA_SIGNS) | frozenset(_LEADING_BLANKS)


def sanitize_cell_text(value: str) -> str:
    """``value`` with each character XML cannot hold replaced by U+FFFD (never a failed export)."""
    return XML_ILLEGAL.sub(REPLACEMENT, value)


def formula_like(value: str) -> bool:
    """Whether a spreadsheet would read this text as a formula (or a DDE command)."""
    if not value:
        return False
    if value[0] in "\t\r\n":
        return True
    return value.lstrip(_LEADING_BLANKS)[:1] in _FORMULA_SIGNS


def escape_formula(value: str) -> str:
    """For CSV: a leading apostrophe makes a formula-like text plain text (Excel hides it)."""
    return "'" + value if formula_like(value) else value
