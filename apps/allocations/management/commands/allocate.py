"""``manage.py allocate --input instance.json [--output result.json]``: the engine on a JSON file.

The formats are documented in docs/allocation-format.md. A bad instance is reported with every
problem found and a non-zero exit status, and no output file is written.

Whatever the file holds, the command ends with the result or a message and exit status 1, never a
traceback: strict JSON only (no NaN/Infinity), at most MAX_DEPTH levels of nesting, integers of at
most Python's 4,300 digits (anything near that is refused by the engine's bounds anyway). The result
is always strict JSON (``allow_nan=False``) and is streamed to its file, never built as one string;
the parsed document is dropped once the engine's input is built, and repeated ids share one string,
so memory stays a small multiple of the instance's size (bench/allocate_memory.py).
"""

import json
import os
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.allocations.engine import AllocationError, allocate, class_json, instance_from_json, share_json

MAX_DEPTH = 64  # an instance needs 4 levels


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
            del data  # the parsed document: the engine's input holds what it needs
            result = allocate(pools, requests)
        except AllocationError as error:
            problems = "\n".join(f"  - {_printable(message)}" for message in error.messages)
            raise CommandError(f"the instance cannot be allocated:\n{problems}") from error
        except (RuntimeError, ArithmeticError) as error:  # an engine bug: still a message, not a traceback
            raise CommandError(
                f"the engine failed on this instance ({type(error).__name__}: {error}); please report it "
                "with the instance."
            ) from error
        del pools, requests
        chunks = result_json_chunks(result)
        if options["output"]:
            _write_atomically(Path(options["output"]), chunks)
        else:
            try:
                for chunk in chunks:
                    self.stdout.write(chunk, ending="")
            except ValueError as error:  # allow_nan=False: cannot happen within the engine's bounds
                raise CommandError(f"the result cannot be written as JSON: {error}") from error

    def _read(self, name: str):
        try:
            if name == "-":
                raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
            else:
                raw = Path(name).read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {name}: {error}") from error
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as error:
            raise CommandError(
                f"cannot read {name}: it is not UTF-8 ({error.reason} at byte {error.start})"
            ) from error
        del raw
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as error:
            raise CommandError(
                f"{name} is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
            ) from error
        except RecursionError as error:
            raise CommandError(f"{name} is nested too deeply (at most {MAX_DEPTH} levels).") from error
        except ValueError as error:  # NaN/Infinity; an integer of more than 4,300 digits
            raise CommandError(f"{name} is not valid JSON: {_printable(str(error))[:200]}") from error
        if _depth_exceeds(data, MAX_DEPTH):
            raise CommandError(f"{name} is nested too deeply (at most {MAX_DEPTH} levels).")
        return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _printable(text: str) -> str:
    """A message naming outside text, writable whatever it holds (lone surrogates escaped)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _depth_exceeds(value, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict | list):
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class _Streamed(list):
    """A list the JSON encoder iterates lazily (its items are made one by one, never all held)."""

    def __init__(self, make, length: int):
        super().__init__()
        self._make = make
        self._length = length

    def __iter__(self):
        return self._make()

    def __len__(self) -> int:
        return self._length

    def __bool__(self) -> bool:
        return self._length > 0


def result_json_chunks(result):
    """The text of ``json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\\n"``, in chunks,
    without building the document or the string; strict JSON (a non-finite number raises ValueError)."""
    count = sum(len(c.shares) for c in result.classes.values())
    document = {
        "classes": [class_json(c) for c in result.classes.values()],
        "allocations": _Streamed(lambda: (share_json(share) for share in result.shares()), count),
    }
    encoder = json.JSONEncoder(ensure_ascii=False, indent=2, allow_nan=False)
    buffer: list[str] = []
    size = 0
    for piece in encoder.iterencode(document):
        buffer.append(piece)
        size += len(piece)
        if size >= 1 << 16:
            yield "".join(buffer)
            buffer, size = [], 0
    buffer.append("\n")
    yield "".join(buffer)


def _write_atomically(path: Path, chunks) -> None:
    """Write to a temporary file next to ``path`` and rename it: never a half-written result, and
    no temporary file left behind whatever goes wrong."""
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error}") from error
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            for chunk in chunks:
                file.write(chunk)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise CommandError(f"cannot write {path}: {error}") from error
    except ValueError as error:  # allow_nan=False, an unencodable character
        Path(temporary).unlink(missing_ok=True)
        raise CommandError(f"the result cannot be written as JSON: {_printable(str(error))}") from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
