import pytest
from django.core.management import call_command

from apps.governance.services import audit_chain_verify
from apps.grants.models import Application, Award, Call, Program
from apps.organizations.models import Organization
from apps.providers.models import QuotaGrant

pytestmark = pytest.mark.django_db


def test_seed_grants_builds_the_demo_once():
    call_command("seed_demo", verbosity=0)
    call_command("seed_grants", verbosity=0)
    assert set(Program.objects.values_list("slug", flat=True)) == {"startup-poc", "academic-research"}
    open_calls = [c for c in Call.objects.all() if c.phase == "open"]
    assert len(open_calls) == 2 and Call.objects.count() == 3
    award = Award.objects.get()
    assert award.application.status == Application.Status.AWARDED and award.mentor is not None
    grant = award.lines.get().grant
    assert grant.source == QuotaGrant.Source.AWARD and grant.organization == Organization.objects.get(
        slug="kanade-ai-inc"
    )
    assert Application.objects.filter(status=Application.Status.SUBMITTED).count() == 1
    call_command("seed_grants", verbosity=0)
    assert Program.objects.count() == 2 and Award.objects.count() == 1
    assert audit_chain_verify().ok
