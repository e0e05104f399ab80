from django.db import migrations

# The function of 0002 raises for every operation it is attached to (TG_OP names it), so the
# statement-level TRUNCATE trigger reuses it. The chain head may be updated (every writer does),
# but never deleted, truncated or moved backwards.
FORWARD = """
CREATE TRIGGER governance_auditevent_no_truncate
    BEFORE TRUNCATE ON governance_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION governance_auditevent_append_only();

CREATE OR REPLACE FUNCTION governance_auditchainhead_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.length < OLD.length THEN
            RAISE EXCEPTION 'governance_auditchainhead length may only grow (% -> % refused)',
                OLD.length, NEW.length;
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'governance_auditchainhead is permanent (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER governance_auditchainhead_no_rewind
    BEFORE UPDATE OR DELETE ON governance_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION governance_auditchainhead_guard();
CREATE TRIGGER governance_auditchainhead_no_truncate
    BEFORE TRUNCATE ON governance_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION governance_auditchainhead_guard();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS governance_auditchainhead_no_truncate ON governance_auditchainhead;
DROP TRIGGER IF EXISTS governance_auditchainhead_no_rewind ON governance_auditchainhead;
DROP FUNCTION IF EXISTS governance_auditchainhead_guard();
DROP TRIGGER IF EXISTS governance_auditevent_no_truncate ON governance_auditevent;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    """On PostgreSQL TRUNCATE of the audit log is refused like UPDATE and DELETE, and the chain head
    (which remembers how long the chain is) can be neither removed nor rewound."""

    dependencies = [("governance", "0003_auditchainhead_length")]
    operations = [migrations.RunPython(forward, backward)]
