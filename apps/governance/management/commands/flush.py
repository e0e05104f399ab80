"""``manage.py flush`` that can empty the append-only audit tables outside production.

On PostgreSQL the audit log and its chain head refuse TRUNCATE (migration 0004), and Django's
flush empties tables with TRUNCATE; the test suite flushes after every transactional test. Outside
production, and only for a database superuser (who could switch the triggers off anyway), the flush
runs with ``session_replication_role = replica``, under which ordinary triggers do not fire. In
production the triggers stay in force and the flush is refused."""

from django.conf import settings
from django.core.management.commands import flush
from django.db import DatabaseError, connections


class Command(flush.Command):
    def handle(self, **options):
        connection = connections[options["database"]]
        bypass = connection.vendor == "postgresql" and not settings.PRODUCTION
        if bypass:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SET session_replication_role = replica")
            except DatabaseError:
                bypass = False  # not a superuser: the audit triggers will refuse, as they should
        try:
            return super().handle(**options)
        finally:
            if bypass:
                with connection.cursor() as cursor:
                    cursor.execute("RESET session_replication_role")
