"""``manage.py provider_simulator``: run a provider simulator (apps/providers/simulator/server.py)."""

from django.core.management.base import BaseCommand, CommandError

from apps.providers.simulator import server


class Command(BaseCommand):
    help = (
        "Run a simulated GPU provider speaking the Alliance Provider API v1 on a loopback port, with "
        "fault injection (500, 503, timeout, drop, slow, lost) and unsigned /_sim control endpoints."
    )
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        server.add_arguments(parser)

    def handle(self, *args, **options):
        try:
            simulator = server.server_from_options(options)
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Provider simulator listening on {simulator.base_url}")
        self.stdout.flush()
        server.serve_until_signalled(simulator)
