"""Run by bench/grant_list_vs_coldfront.py with the Python of a throw-away ColdFront venv (never
with the portal's): migrates ColdFront's database, seeds allocations and times ColdFront's
allocation list with django.test.Client, in-process, as the portal's side is timed. Prints one
JSON line on stdout per
command read from stdin (see ``main``), after a first line naming Django's version.

The database comes from ``DB_URL`` and the settings module from ``DJANGO_SETTINGS_MODULE``
(coldfront.config.settings with ``COLDFRONT_CONFIG`` pointing at the local settings the caller
wrote). ColdFront's code is only imported, never changed, except the list's rows per page
(``AllocationListView.paginate_by``, 25 in ColdFront) set to the portal's for the comparison.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import re
import sys
import time


def seed(n_total: int, state: dict) -> None:
    """Grow the data set to ``n_total`` allocations on one project whose PI (a manager, and a user
    of every allocation) is the member measured; a superuser sees them all."""
    from coldfront.core.allocation.models import (
        Allocation,
        AllocationStatusChoice,
        AllocationUser,
        AllocationUserStatusChoice,
    )
    from coldfront.core.field_of_science.models import FieldOfScience
    from coldfront.core.project.models import (
        Project,
        ProjectStatusChoice,
        ProjectUser,
        ProjectUserRoleChoice,
        ProjectUserStatusChoice,
    )
    from coldfront.core.resource.models import Resource, ResourceType
    from django.contrib.auth.models import User
    from django.db import transaction

    with transaction.atomic():
        if "pi" not in state:
            pi = User.objects.create_user(
                "pi", "pi@bench.example", "x", first_name="Hanako", last_name="Sato"
            )
            User.objects.create_superuser("admin", "admin@bench.example", "x")
            science, _ = FieldOfScience.objects.get_or_create(
                pk=FieldOfScience.DEFAULT_PK, defaults={"description": "Other"}
            )
            project = Project.objects.create(
                field_of_science=science,
                title="GPU research",
                pi=pi,
                description="Bench project",
                status=ProjectStatusChoice.objects.get(name="Active"),
            )
            ProjectUser.objects.create(
                user=pi,
                project=project,
                role=ProjectUserRoleChoice.objects.get(name="Manager"),
                status=ProjectUserStatusChoice.objects.get(name="Active"),
            )
            kinds = ResourceType.objects.get(name="Cluster")
            resources = [
                Resource.objects.create(resource_type=kinds, name=f"gpu-pool-{i}", description="pool")
                for i in range(9)
            ]
            state.update(pi=pi, project=project, resources=resources, count=0)
        start = state["count"]
        allocations = Allocation.objects.bulk_create(
            [
                Allocation(
                    project=state["project"],
                    status=AllocationStatusChoice.objects.get(name="Active"),
                    quantity=1,
                    start_date=datetime.date(2026, 10, 1),
                    end_date=datetime.date(2027, 1, 1),
                    justification=f"Bench allocation {i}",
                )
                for i in range(start, n_total)
            ],
            batch_size=2000,
        )
        through = Allocation.resources.through
        through.objects.bulk_create(
            [
                through(allocation_id=a.pk, resource_id=state["resources"][i % 9].pk)
                for i, a in enumerate(allocations, start)
            ],
            batch_size=2000,
        )
        active = AllocationUserStatusChoice.objects.get(name="Active")
        AllocationUser.objects.bulk_create(
            [AllocationUser(allocation=a, user=state["pi"], status=active) for a in allocations],
            batch_size=2000,
        )
        state["count"] = n_total
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def get(client, path: str):
    response = client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}")
    return response


def timed(client, path: str, runs: int) -> list[float]:
    samples = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(runs):
            started = time.perf_counter()
            get(client, path)
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        gc.enable()
    return samples


def queries(client, path: str) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = get(client, path)
    rows = len(re.findall(r'<td><a href="/allocation/\d+/">', response.content.decode()))
    return {"path": path, "queries": len(captured.captured_queries), "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-page", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    import django

    django.setup()
    from coldfront.core.allocation.views import AllocationListView
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    AllocationListView.paginate_by = args.per_page
    call_command("migrate", verbosity=0, interactive=False)
    for command in ("add_resource_defaults", "add_allocation_defaults", "add_default_project_choices"):
        call_command(command)
    state: dict = {}
    pages = {"member": "/allocation/", "staff": "/allocation/?show_all_allocations=on"}
    clients: dict = {}
    # Driven line by line, so that the caller can alternate between both sides under the same load:
    # "seed N" grows the data to N allocations and warms up, "time K" times K requests of each
    # list, "queries" counts the queries and rows of one request. One JSON line answers each.
    print(json.dumps({"django": django.get_version(), "per_page": args.per_page}), flush=True)
    for line in sys.stdin:
        command, _, value = line.strip().partition(" ")
        if command == "seed":
            seed(int(value), state)
            clients = {"member": Client(), "staff": Client()}
            clients["member"].force_login(state["pi"])
            clients["staff"].force_login(User.objects.get(username="admin"))
            for who, path in pages.items():
                for _ in range(args.warmup):
                    get(clients[who], path)
            answer = {"seeded": int(value)}
        elif command == "time":
            answer = {who: timed(clients[who], path, int(value)) for who, path in pages.items()}
        elif command == "queries":
            answer = {who: queries(clients[who], path) for who, path in pages.items()}
        else:
            raise SystemExit(f"unknown command {line!r}")
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
