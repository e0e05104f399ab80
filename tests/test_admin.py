"""The Django admin: every model has a working changelist with search, and edits are audited."""

import pytest
from django.contrib import admin
from django.urls import reverse

from apps.governance.models import AuditEvent
from apps.governance.services import audit_chain_verify
from tests.factories import ApplicationFactory, OrganizationFactory, OrgRoleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(staff_client, staff):
    staff.is_superuser = True
    staff.save()
    return staff_client


def test_every_registered_model_has_a_searchable_changelist(admin_client):
    OrganizationFactory()
    ApplicationFactory(status="submitted")
    for model, model_admin in admin.site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = admin_client.get(url, {"q": "テスト"} if model_admin.search_fields else {})
        assert response.status_code == 200, url


def test_membership_suspend_action_goes_through_the_service(admin_client):
    org = OrganizationFactory()
    url = reverse("admin:organizations_membership_changelist")
    admin_client.post(url, {"action": "suspend", "_selected_action": [org.membership.pk]})
    org.membership.refresh_from_db()
    assert org.membership.status == "suspended"
    assert AuditEvent.objects.filter(action="membership.suspended").exists()


def test_admin_approve_action_refuses_wrong_states_with_a_message(admin_client):
    application = ApplicationFactory(status="submitted")
    url = reverse("admin:organizations_membershipapplication_changelist")
    response = admin_client.post(
        url, {"action": "approve", "_selected_action": [application.pk]}, follow=True
    )
    assert response.status_code == 200
    application.refresh_from_db()
    assert application.status == "submitted"


def test_editing_in_the_admin_is_audited(admin_client):
    org = OrganizationFactory(name_en="Before KK")
    OrgRoleFactory(organization=org, role="owner")
    url = reverse("admin:organizations_organization_change", args=[org.pk])
    response = admin_client.get(url)
    form = response.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update({"name_en": "After KK", "home_provider": org.home_provider_id})
    for formset in response.context["inline_admin_formsets"]:
        fs = formset.formset
        data.update(
            {
                f"{fs.prefix}-TOTAL_FORMS": str(len(fs.forms)),
                f"{fs.prefix}-INITIAL_FORMS": str(fs.initial_form_count()),
                f"{fs.prefix}-MIN_NUM_FORMS": "0",
                f"{fs.prefix}-MAX_NUM_FORMS": "1000",
            }
        )
        for i, f in enumerate(fs.forms):
            for name, field in f.fields.items():
                value = f.initial.get(name, field.initial)
                if value is not None:
                    data[f"{fs.prefix}-{i}-{name}"] = getattr(value, "pk", value)
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = AuditEvent.objects.get(action="admin.organization.changed")
    assert event.before == {"name_en": "Before KK"} and event.after == {"name_en": "After KK"}
    assert audit_chain_verify().ok
