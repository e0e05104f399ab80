"""``manage.py seed_workinggroups``: demo groups on top of seed_demo, idempotent."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.governance.services import audit_chain_verify
from apps.workinggroups.models import Meeting, Motion, Thread, WorkingGroup

pytestmark = pytest.mark.django_db


def test_it_needs_seed_demo_first():
    with pytest.raises(CommandError):
        call_command("seed_workinggroups")


def test_it_creates_the_demo_groups_once():
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_workinggroups", stdout=StringIO())
    names = set(WorkingGroup.objects.values_list("name_ja", flat=True))
    assert {"医療AI分科会", "製造業AI分科会", "金融AI分科会", "GPU運用ベストプラクティス分科会"} <= names
    for group in WorkingGroup.objects.all():
        assert group.status == "active"
        assert group.members.filter(role="chair").count() == 1
        assert Meeting.objects.filter(group=group).exists()
        assert Thread.objects.filter(group=group, post_count=2).exists()
        assert any(m.is_open for m in Motion.objects.filter(group=group))
    counts = (WorkingGroup.objects.count(), Meeting.objects.count(), Thread.objects.count())
    call_command("seed_workinggroups", stdout=StringIO())
    assert (WorkingGroup.objects.count(), Meeting.objects.count(), Thread.objects.count()) == counts
    assert audit_chain_verify().ok
