import os

import pytest
from hypothesis import settings as hypothesis_settings

from portal.celery import app as celery_app

# Property tests run the same examples on every run (CI must not fail at random); explore new ones
# with HYPOTHESIS_PROFILE=explore (a failure prints the blob to reproduce it).
hypothesis_settings.register_profile("deterministic", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture(autouse=True)
def _celery_eager(settings):
    """Unit tests run tasks in-process (e-mails land in mail.outbox). Tests that need the real
    worker and broker opt out with the ``celery_worker_real`` marker."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts in the site's default language (Japanese). A request activates its
    user's language in the thread and nothing resets it afterwards, so without this a test's
    messages would depend on the tests that ran before it."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def terms(db):
    from tests.factories import TermsFactory

    return TermsFactory()


@pytest.fixture
def staff(db):
    from tests.factories import StaffFactory

    return StaffFactory()


@pytest.fixture
def staff_client(client, staff):
    """A logged-in secretariat user with TOTP set up (so the MFA requirement is met)."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    TOTP.activate(staff, generate_totp_secret())
    client.force_login(staff)
    return client


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2's deliberate slowness costs ~0.3 s per user; tests need no such protection.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_configure(config):
    from django.conf import settings

    # whitenoise warns when STATIC_ROOT is missing; the tests serve static files from finders.
    settings.STATIC_ROOT.mkdir(exist_ok=True)
