import pytest
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from django.urls import reverse

from apps.accounts.models import User
from tests.factories import PASSWORD, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = {
    "email": "Visitor@Example.jp",
    "password1": "a-Long-passw0rd!",
    "password2": "a-Long-passw0rd!",
    "full_name": "訪問 者",
    "language": "en",
}


def test_signup_requires_email_verification_before_login(client, mailoutbox):
    response = client.post(reverse("account_signup"), SIGNUP)
    assert response.status_code == 302 and "confirm-email" in response["Location"]
    user = User.objects.get(email="visitor@example.jp")
    assert user.full_name == "訪問 者" and user.language == "en"
    assert len(mailoutbox) == 1 and "/accounts/confirm-email/" in mailoutbox[0].body
    # Not verified yet: logging in sends you to verify, and the dashboard stays closed.
    client.post(reverse("account_login"), {"login": "visitor@example.jp", "password": SIGNUP["password1"]})
    assert client.get(reverse("dashboard")).status_code == 302
    key = EmailConfirmationHMAC(EmailAddress.objects.get(user=user)).key
    client.post(reverse("account_confirm_email", args=[key]))
    assert client.get(reverse("dashboard")).status_code == 200


def test_emails_are_unique_case_insensitively(client, mailoutbox):
    UserFactory(email="taken@example.jp")
    client.post(reverse("account_signup"), {**SIGNUP, "email": "TAKEN@example.jp"})
    # No second account; to avoid revealing who is registered, the owner of the address is told instead.
    assert User.objects.filter(email__iexact="taken@example.jp").count() == 1
    assert mailoutbox and mailoutbox[-1].to == ["taken@example.jp"]


def test_login_is_rate_limited_after_repeated_failures(client):
    user = UserFactory()
    for _ in range(5):
        client.post(reverse("account_login"), {"login": user.email, "password": "wrong"})
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    # Even the right password does not get through until the window has passed.
    assert response.status_code == 200 and response.context["form"].errors
    assert "_auth_user_id" not in client.session


def test_password_reset_sends_a_link(client, mailoutbox):
    UserFactory(email="forgot@example.jp")
    client.post(reverse("account_reset_password"), {"email": "forgot@example.jp"})
    assert len(mailoutbox) == 1 and "/accounts/password/reset/key/" in mailoutbox[0].body


def test_mfa_totp_is_available_to_members(client):
    client.force_login(UserFactory())
    assert client.get(reverse("mfa_index")).status_code == 200
    # Activating asks for the password again first (allauth's reauthentication), then shows the QR code.
    response = client.get(reverse("mfa_activate_totp"), follow=True)
    assert response.status_code == 200 and "reauthenticate" in response.redirect_chain[-1][0]
    response = client.post(response.redirect_chain[-1][0], {"password": PASSWORD}, follow=True)
    assert response.status_code == 200 and response.request["PATH_INFO"] == reverse("mfa_activate_totp")
    assert b"data:image/svg+xml" in response.content


def test_staff_must_set_up_totp_before_reaching_the_console(client):
    staff = StaffFactory()
    client.force_login(staff)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"] == reverse("mfa_activate_totp")
    assert client.get(reverse("admin:index"), follow=True).request["PATH_INFO"] != reverse("admin:index")


def test_staff_login_asks_for_the_totp_code(client):
    from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value

    staff = StaffFactory()
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    response = client.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session
    client.post(reverse("mfa_authenticate"), {"code": "000000" if format_hotp_value(0) else ""})
    assert "_auth_user_id" not in client.session
    import time

    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    client.post(reverse("mfa_authenticate"), {"code": code})
    assert client.session["_auth_user_id"] == str(staff.pk)
    assert client.get(reverse("organizations:review-queue")).status_code == 200


def test_language_switch_is_remembered_on_the_account(client):
    user = UserFactory(language="ja")
    client.force_login(user)
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("dashboard")})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.language == "en"
    assert "Welcome" in client.get(reverse("dashboard")).content.decode()


def test_profile_form_validates_and_saves(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("accounts:profile"), {"full_name": "", "language": "xx"})
    assert response.status_code == 200 and response.context["form"].errors
    client.post(reverse("accounts:profile"), {"full_name": "新しい 名前", "language": "ja"})
    user.refresh_from_db()
    assert user.full_name == "新しい 名前"
