from django.contrib import messages
from django.db import models
from django.forms.models import model_to_dict

from apps.core.exceptions import ApplicationError
from apps.governance.services import audit_record


class AuditedAdminMixin:
    """Edits made in the Django admin leave AuditEvents like any service does: the object's own
    changes, its inlines' changes (recorded on the parent) and deletions, bulk ones included."""

    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request, obj, form, change):
        fields = list(form.changed_data) if change else [f.name for f in obj._meta.concrete_fields]
        before = model_to_dict(type(obj).objects.get(pk=obj.pk), fields=fields) if change else None
        super().save_model(request, obj, form, change)
        if fields:
            audit_record(
                actor=request.user,
                action=f"admin.{obj._meta.model_name}.{'changed' if change else 'added'}",
                target=obj,
                before=before,
                after=model_to_dict(obj, fields=fields),
            )

    def save_formset(self, request, form, formset, change):
        # Deleted rows lose their pk on deletion: remember them first.
        deleted = [(f.instance.pk, model_to_dict(f.instance)) for f in formset.deleted_forms if f.instance.pk]
        super().save_formset(request, form, formset, change)
        parent = form.instance
        for obj in formset.new_objects:
            self._audit_child(request, parent, obj, "added", after=model_to_dict(obj))
        for obj, changed in formset.changed_objects:
            self._audit_child(request, parent, obj, "changed", after=model_to_dict(obj, fields=changed))
        for pk, data in deleted:
            self._audit_child(request, parent, formset.model, "deleted", before={"id": pk, **data})

    @staticmethod
    def _audit_child(request, parent, obj, verb, before=None, after=None):
        audit_record(
            actor=request.user,
            action=f"admin.{obj._meta.model_name}.{verb}",
            target=parent,
            before=before,
            after=after,
        )

    def delete_model(self, request, obj):
        audit_record(
            actor=request.user,
            action=f"admin.{obj._meta.model_name}.deleted",
            target=obj,
            before=model_to_dict(obj),
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit_record(
                actor=request.user,
                action=f"admin.{obj._meta.model_name}.deleted",
                target=obj,
                before=model_to_dict(obj),
            )
        super().delete_queryset(request, queryset)


def run_each(modeladmin, request, queryset, fn, done_message) -> None:
    """Run a service on each selected object (an admin action): refusals become error messages,
    the rest are counted in ``done_message`` (with ``%(count)d``)."""
    done = 0
    for obj in queryset:
        try:
            fn(obj)
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
    if done:
        modeladmin.message_user(request, done_message % {"count": done}, messages.SUCCESS)
