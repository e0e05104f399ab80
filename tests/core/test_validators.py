import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from apps.core.validators import (
    corporate_number_check_digit,
    normalize_corporate_number,
    validate_corporate_number,
)


# 7000012050002 is the National Tax Agency's own corporate number (国税庁).
@pytest.mark.parametrize("number", ["7000012050002", "1000013040008"])
def test_published_numbers_validate(number):
    validate_corporate_number(number)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "corporate_number_length"),
        ("700001205000", "corporate_number_length"),  # 12 digits
        ("70000120500021", "corporate_number_length"),  # 14 digits
        ("70000120500O2", "corporate_number_length"),  # letter O
        ("8000012050002", "corporate_number_check_digit"),  # wrong check digit
        ("7000012050020", "corporate_number_check_digit"),  # swapped digits
    ],
)
def test_bad_numbers_are_refused_with_a_reason(value, code):
    with pytest.raises(ValidationError) as exc:
        validate_corporate_number(value)
    assert exc.value.code == code


def test_full_width_digits_spaces_and_hyphens_are_normalized():
    assert normalize_corporate_number("７-0000-1205-0002") == "7000012050002"
    assert normalize_corporate_number(" 7000 0120 50002 ") == "7000012050002"
    validate_corporate_number("７０００ ０１２０ ５０００２")


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_the_computed_check_digit_always_validates(base):
    validate_corporate_number(f"{corporate_number_check_digit(base)}{base}")


@given(st.text(alphabet="0123456789", min_size=12, max_size=12), st.integers(min_value=1, max_value=8))
def test_any_other_first_digit_is_refused(base, shift):
    bad = (corporate_number_check_digit(base) + shift) % 10
    with pytest.raises(ValidationError):
        validate_corporate_number(f"{bad}{base}")
