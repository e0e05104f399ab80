from django.core.management.base import BaseCommand, CommandError

from apps.governance.checkpoints import MISMATCH_REASON
from apps.governance.services import audit_chain_verify

EXIT_BROKEN = 1
EXIT_INCOMPLETE = 2


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain and compare it with the signed checkpoints every provider "
        f"holds. Exit status {EXIT_BROKEN}: the chain is broken or disagrees with a checkpoint; "
        f"{EXIT_INCOMPLETE}: the chain holds but some providers could not be asked."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--local",
            action="store_true",
            help="check the chain in the database only, without asking the providers for checkpoints",
        )

    def handle(self, *args, **options):
        report = audit_chain_verify(check_providers=not options["local"])
        lines = []
        if report.reason and report.broken_event_id is not None:
            lines.append(
                f"Audit chain broken at event #{report.broken_event_id}: {report.reason} "
                f"({report.checked} events verified before it)."
            )
        elif report.reason and report.reason != MISMATCH_REASON:
            lines.append(f"Audit chain broken: {report.reason} ({report.checked} events verified).")
        if report.checkpoint_problems:
            lines.append(f"The chain of {report.checked} events does not match the providers' checkpoints:")
            lines += [f"  - {problem}" for problem in report.checkpoint_problems]
        if report.unreachable:
            lines.append("Checkpoints could not be read from:")
            lines += [f"  - {name}" for name in report.unreachable]
        if not report.ok:
            raise CommandError("\n".join(lines), returncode=EXIT_BROKEN)
        summary = f"Audit chain intact: {report.checked} events."
        if not options["local"] and report.providers_checked:
            summary += (
                f" {report.checkpoints_checked} checkpoints from {len(report.providers_checked)} "
                "providers agree with it."
            )
        elif not options["local"] and not report.unreachable:
            summary += " No provider has an API to hold checkpoints: compared with nothing."
        if report.unreachable:
            raise CommandError(
                "\n".join([summary, *lines, "The comparison with the providers is incomplete."]),
                returncode=EXIT_INCOMPLETE,
            )
        self.stdout.write(self.style.SUCCESS(summary))
