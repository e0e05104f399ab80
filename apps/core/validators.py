"""Validators shared across apps."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


def corporate_number_check_digit(base12: str) -> int:
    """Check digit of a Japanese corporate number (法人番号) for its 12-digit base.

    National Tax Agency rule: with P(n) the n-th digit counted from the right of the base and
    Q(n) = 1 for odd n, 2 for even n, the check digit is 9 - (sum(P(n) * Q(n)) mod 9).
    """
    total = 0
    for n, char in enumerate(reversed(base12), start=1):
        total += int(char) * (1 if n % 2 else 2)
    return 9 - (total % 9)


def normalize_corporate_number(value: str) -> str:
    """Strip spaces and hyphens and turn full-width digits into ASCII ones."""
    table = str.maketrans("０１２３４５６７８９", "0123456789")
    return "".join(c for c in (value or "").translate(table) if c not in " -ー−\u3000")


def validate_corporate_number(value: str) -> None:
    number = normalize_corporate_number(value)
    if len(number) != 13 or not number.isdigit():
        raise ValidationError(_("A corporate number has exactly 13 digits."), code="corporate_number_length")
    if int(number[0]) != corporate_number_check_digit(number[1:]):
        raise ValidationError(
            _("This corporate number's check digit is wrong; please check for a typo."),
            code="corporate_number_check_digit",
        )
