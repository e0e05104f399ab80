import hashlib
import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

GENESIS_HASH = "0" * 64


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("AuditEvent rows are append-only")

    def delete(self):
        raise TypeError("AuditEvent rows are append-only")


class AuditEvent(models.Model):
    """One state change, written by the service that made it. Append-only and hash-chained.

    ``hash`` covers this row's content and ``prev_hash``, the hash of the row before it (by id);
    changing or removing any row breaks the chain from there on (``manage.py verify_audit_chain``).
    On PostgreSQL a trigger also refuses UPDATE and DELETE.
    """

    occurred_at = models.DateTimeField(_("occurred at"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    actor_label = models.CharField(_("actor label"), max_length=255, blank=True)
    action = models.CharField(_("action"), max_length=100, db_index=True)
    target_type = models.CharField(_("object type"), max_length=100, db_index=True)
    target_id = models.CharField(_("object id"), max_length=64, db_index=True)
    target_repr = models.CharField(_("object"), max_length=255, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(_("after"), null=True, blank=True, encoder=DjangoJSONEncoder)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [models.Index(fields=["target_type", "target_id", "id"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.target_type}:{self.target_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise TypeError("AuditEvent rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("AuditEvent rows are append-only")

    def payload(self) -> dict:
        return {
            "prev_hash": self.prev_hash,
            "occurred_at": self.occurred_at.isoformat(),
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "target_repr": self.target_repr,
            "before": self.before,
            "after": self.after,
        }

    def compute_hash(self) -> str:
        # Round-trip before/after through JSON so the hash covers exactly what is stored.
        data = json.loads(json.dumps(self.payload(), cls=DjangoJSONEncoder))
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AuditChainHead(models.Model):
    """A single row locked by every writer so the chain is extended one event at a time.

    ``length`` counts the events ever appended: event number ``n`` of the chain (1-based, in id
    order) is the one a checkpoint with sequence ``n`` names. On PostgreSQL a trigger refuses to
    delete this row or to make ``length`` smaller, so an emptied chain cannot pass for a new one."""

    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    last_event_id = models.BigIntegerField(null=True, blank=True)
    length = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("audit chain head")
        verbose_name_plural = _("audit chain head")

    def __str__(self) -> str:
        return self.last_hash


class AuditVerification(models.Model):
    """One run of the chain verification against the providers' checkpoints (beat, or a staff
    member's "verify now"), kept so staff pages, the health check and the metrics can show the
    latest verdict without walking the chain or calling providers inside a request."""

    class Outcome(models.TextChoices):
        RUNNING = "running", _("Running")
        INTACT = "intact", _("Intact")
        INCOMPLETE = "incomplete", _("Intact, some providers unreadable")
        BROKEN = "broken", _("Broken")

    started_at = models.DateTimeField(_("started at"), db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    events_checked = models.BigIntegerField(_("events checked"), default=0)
    checkpoints_checked = models.IntegerField(_("checkpoints checked"), default=0)
    reason = models.TextField(_("reason"), blank=True)
    problems = models.JSONField(_("checkpoint problems"), default=list, blank=True)
    unreachable = models.JSONField(_("unreachable providers"), default=list, blank=True)
    providers_checked = models.JSONField(_("providers checked"), default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("audit chain verification")
        verbose_name_plural = _("audit chain verifications")

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.outcome}"

    @property
    def is_broken(self) -> bool:
        return self.outcome == self.Outcome.BROKEN
