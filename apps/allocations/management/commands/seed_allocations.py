"""Demo allocation rounds on top of ``seed_demo`` (idempotent): the default fair-share policy, a
published round for the second quarter of fiscal year 2026 (requests from the demo members, computed
and published through the services, with usage reported on its grants, so the transparency report
and the members' statements have figures), and the fourth quarter's round open for requests."""

import datetime
import random

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.accounts.models import User
from apps.allocations import services
from apps.allocations.models import AllocationRound, FairSharePolicy
from apps.organizations.models import Membership, Organization, OrgRole
from apps.providers import services as provider_services
from apps.providers.models import ResourcePool

STAFF_EMAIL = "secretariat@gpu-alliance.example"
PUBLISHED = ("2026年度 第2四半期", datetime.date(2026, 7, 1), datetime.date(2026, 10, 1))
OPEN = ("2026年度 第4四半期", datetime.date(2027, 1, 1), datetime.date(2027, 4, 1))
JUSTIFICATIONS = [
    "日本語大規模言語モデルの継続事前学習と評価",
    "医用画像の基盤モデルの学習（国内データのみ）",
    "自動運転向け世界モデルのシミュレーション学習",
    "創薬候補化合物の分子動力学と生成モデル",
    "金融文書の要約モデルのファインチューニング",
]


class Command(BaseCommand):
    help = "Load demo allocation rounds (needs seed_demo first; safe to run again)."

    def handle(self, *args, **options):
        staff = User.objects.filter(email=STAFF_EMAIL).first()
        if staff is None:
            raise CommandError("Run `manage.py seed_demo` first: the rounds use its people and pools.")
        policy = FairSharePolicy.objects.filter(is_default=True).first()
        if policy is None:
            policy = FairSharePolicy.objects.create(
                name="2026年度 標準ポリシー", is_default=True, award_reserve_share="0.050"
            )
        members = list(
            Organization.objects.filter(membership__status=Membership.Status.ACTIVE).order_by("slug")
        )
        owners = {
            role.organization_id: role.user
            for role in OrgRole.objects.filter(
                organization__in=members, role=OrgRole.Role.OWNER
            ).select_related("user")
        }
        rng = random.Random(2026)
        if not AllocationRound.objects.filter(name=PUBLISHED[0]).exists():
            self._published_round(staff, policy, members, owners, rng)
        if not AllocationRound.objects.filter(name=OPEN[0]).exists():
            self._open_round(staff, policy, members, owners, rng)
        self.stdout.write("Demo allocation rounds loaded.")

    def _file_requests(self, allocation_round, members, owners, rng, share: float) -> None:
        classes = sorted(set(ResourcePool.objects.filter(is_active=True).values_list("gpu_class", flat=True)))
        for org in members:
            owner = owners.get(org.pk)
            if owner is None or rng.random() > share:
                continue
            for gpu_class in rng.sample(classes, rng.choice((1, 1, 2))):
                demand = rng.choice((2000, 5000, 8000, 12000, 20000, 40000))
                if gpu_class == "MI300X":
                    demand = rng.choice((500, 1500, 3000))
                services.request_submit(
                    round_id=allocation_round.pk,
                    organization=org,
                    gpu_class=gpu_class,
                    demand_gpu_hours=demand,
                    justification=rng.choice(JUSTIFICATIONS),
                    actor=owner,
                )

    @transaction.atomic
    def _published_round(self, staff, policy, members, owners, rng) -> None:
        name, start, end = PUBLISHED
        allocation_round = services.round_create(
            name=name, fiscal_year=2026, period_start=start, period_end=end, actor=staff, policy_id=policy.pk
        )
        self._file_requests(allocation_round, members, owners, rng, share=1.0)
        services.round_close(round_id=allocation_round.pk, actor=staff)
        services.round_compute(round_id=allocation_round.pk, actor=staff)
        grants = services.round_publish(round_id=allocation_round.pk, actor=staff)
        # What the providers reported for the quarter: 40 to 100 % of each grant, in daily records.
        for grant in grants:
            used = float(grant.gpu_hours) * rng.uniform(0.4, 1.0)
            days = 30
            records = []
            for day in range(days):
                started = datetime.datetime(2026, 7, 1, 9, tzinfo=datetime.UTC) + datetime.timedelta(
                    days=3 * day
                )
                records.append(
                    {
                        "record_id": f"demo-{grant.public_id}-{day}",
                        "grant_id": str(grant.public_id),
                        "gpu_hours": f"{used / days:.4f}",
                        "started_at": started.isoformat(),
                        "ended_at": (started + datetime.timedelta(hours=20)).isoformat(),
                    }
                )
            provider_services.usage_ingest(provider=grant.pool.provider, records=records)

    @transaction.atomic
    def _open_round(self, staff, policy, members, owners, rng) -> None:
        name, start, end = OPEN
        allocation_round = services.round_create(
            name=name, fiscal_year=2026, period_start=start, period_end=end, actor=staff, policy_id=policy.pk
        )
        self._file_requests(allocation_round, members, owners, rng, share=0.5)
