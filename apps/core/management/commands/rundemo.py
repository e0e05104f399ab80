"""Serve the demo: one provider simulator per demo provider, an outbox sweeper, and the web server.

Used by `make run`. Everything stops on Ctrl-C."""

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

ROOT = Path(settings.BASE_DIR)


class Command(BaseCommand):
    help = "Run the demo: provider simulators, the outbox sweeper and the development server."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--sweep-every", type=float, default=15.0)

    def handle(self, *args, addrport, sweep_every, **options):
        from apps.providers.models import Provider

        if not settings.PROVIDER_DEMO_SECRETS:
            # The simulators and the portal share the guessable demo secrets: only when asked.
            raise CommandError(
                "rundemo needs the demo's provider secrets: set PORTAL_DEMO=1 (make run does)."
            )

        processes: list[subprocess.Popen] = []
        stop = threading.Event()
        try:
            for provider in Provider.objects.exclude(api_base_url="").order_by("pk"):
                url = urlsplit(provider.api_base_url)
                if url.hostname not in ("127.0.0.1", "localhost"):
                    continue  # a real provider: nothing to simulate
                processes.append(self._start_simulator(provider, url.port))
                self.stdout.write(f"Provider simulator for {provider.name_en}: {provider.api_base_url}")
            self._wait_healthy(Provider.objects.exclude(api_base_url=""))
            self._sweep_and_pull(first=True)
            threading.Thread(target=self._sweeper, args=(stop, sweep_every), daemon=True).start()
            server = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", addrport, "--noreload"], cwd=ROOT
            )
            processes.append(server)
            signal.signal(signal.SIGTERM, lambda *_: server.terminate())
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()

    def _start_simulator(self, provider, port):
        return subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "provider_simulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--key-id",
                provider.api_key_id,
                "--secret",
                provider.api_secret,
                "--db",
                str(self._state_dir() / f"simulator-{provider.slug}.sqlite3"),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )

    @staticmethod
    def _state_dir() -> Path:
        path = ROOT / "var"
        path.mkdir(exist_ok=True)
        return path

    def _wait_healthy(self, providers, timeout=20.0):
        deadline = time.monotonic() + timeout
        for provider in providers:
            health = provider.api_base_url.rsplit("/v1", 1)[0] + "/_sim/health"
            while True:
                try:
                    with urllib.request.urlopen(health, timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        self.stderr.write(f"simulator for {provider.slug} did not start")
                        break
                    time.sleep(0.2)

    def _sweep_and_pull(self, first=False):
        from django.db import close_old_connections

        from apps.providers.models import Provider, UsageRecord
        from apps.providers.services import outbox_sweep, usage_pull

        close_old_connections()
        sent = outbox_sweep()
        for provider in Provider.objects.exclude(api_base_url=""):
            base = provider.api_base_url.rsplit("/v1", 1)[0]
            if first and not UsageRecord.objects.filter(provider=provider).exists():  # usage to show
                request = urllib.request.Request(
                    base + "/_sim/usage/generate",
                    data=json.dumps({"records_per_quota": 24}).encode(),
                    headers={"Content-Type": "application/json"},
                    method="POST",
                )
                try:
                    urllib.request.urlopen(request, timeout=5).close()
                except OSError:
                    continue
            try:
                usage_pull(provider_id=provider.pk)
            except Exception as exc:
                self.stderr.write(f"usage pull from {provider.slug} failed: {exc}")
        if sent:
            self.stdout.write(f"Outbox sweeper sent {sent} messages.")

    def _sweeper(self, stop, every):
        """What celery beat does in production: sweep the outbox, pull usage, reconcile now and then."""
        from apps.providers.models import Provider
        from apps.providers.services import provider_reconcile

        rounds = 0
        while not stop.wait(every):
            rounds += 1
            try:
                self._sweep_and_pull()
                if rounds % 20 == 0:
                    for provider_id in Provider.objects.exclude(api_base_url="").values_list("pk", flat=True):
                        provider_reconcile(provider_id=provider_id)
            except Exception as exc:  # the demo keeps running; the provider console shows health
                self.stderr.write(f"sweeper: {exc}")
