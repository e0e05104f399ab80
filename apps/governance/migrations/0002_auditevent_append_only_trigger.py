from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION governance_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'governance_auditevent is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER governance_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON governance_auditevent
    FOR EACH ROW EXECUTE FUNCTION governance_auditevent_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS governance_auditevent_no_update_delete ON governance_auditevent;
DROP FUNCTION IF EXISTS governance_auditevent_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    """On PostgreSQL the database itself refuses to change or delete audit rows."""

    dependencies = [("governance", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
