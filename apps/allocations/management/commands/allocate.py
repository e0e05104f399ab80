"""``manage.py allocate --input instance.json [--output result.json]``: the engine on a JSON file.

The formats are documented in docs/allocation-format.md. A bad instance is reported with every
problem found and a non-zero exit status, and no output file is written.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.allocations.engine import AllocationError, allocate, instance_from_json


class Command(BaseCommand):
    help = (
        "Compute the weighted max-min fair GPU allocation of a JSON instance (pools and request lines) "
        "and write the result as JSON. Format: docs/allocation-format.md."
    )
    # A what-if tool that touches neither the database nor the URLs: no system checks needed.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--input", required=True, help="the instance (JSON); '-' reads standard input")
        parser.add_argument("--output", help="where to write the result (JSON); standard output if omitted")

    def handle(self, *args, **options):
        data = self._read(options["input"])
        try:
            pools, requests = instance_from_json(data)
            result = allocate(pools, requests)
        except AllocationError as error:
            problems = "\n".join(f"  - {message}" for message in error.messages)
            raise CommandError(f"the instance cannot be allocated:\n{problems}") from error
        text = json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n"
        if options["output"]:
            _write_atomically(Path(options["output"]), text)
        else:
            self.stdout.write(text, ending="")

    def _read(self, name: str):
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read {name}: {error}") from error
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(
                f"{name} is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
            ) from error


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file next to ``path`` and rename it: never a half-written result."""
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error}") from error
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise CommandError(f"cannot write {path}: {error}") from error
