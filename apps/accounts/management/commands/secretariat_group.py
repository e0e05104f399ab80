from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.accounts.services import SECRETARIAT_GROUP, secretariat_group_ensure


class Command(BaseCommand):
    help = (
        f"Create or refresh the '{SECRETARIAT_GROUP}' group (the secretariat's admin rights) and add "
        "the given accounts to it as staff. Secretariat staff need no superuser flag."
    )

    def add_arguments(self, parser):
        parser.add_argument("emails", nargs="*", help="e-mail addresses of accounts to add")

    def handle(self, *args, emails, **options):
        users = []
        for email in emails:
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                raise CommandError(f"No account with the e-mail address {email}.")
            users.append(user)
        group = secretariat_group_ensure(members=users)
        self.stdout.write(
            f"{group.name}: {group.permissions.count()} permissions, {group.user_set.count()} members."
        )
