from django.db import migrations, models


def backfill_length(apps, schema_editor):
    """The chain's length so far is the number of events stored (the chain was verified linear)."""
    AuditChainHead = apps.get_model("governance", "AuditChainHead")
    AuditEvent = apps.get_model("governance", "AuditEvent")
    count = AuditEvent.objects.count()
    if count:
        AuditChainHead.objects.filter(pk=1).update(length=count)


class Migration(migrations.Migration):
    """The chain head counts its events, so that checkpoints can name a position in the chain and
    an emptied chain with a history behind it no longer verifies."""

    dependencies = [
        ("governance", "0002_auditevent_append_only_trigger"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditchainhead",
            name="length",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(backfill_length, migrations.RunPython.noop),
    ]
