"""Demo grant programs on top of ``seed_demo``: a startup PoC program and an academic program with
open calls, and a closed call with reviews and an award (grants pushed to the simulators when the
demo runs). Built through the services, so the audit chain is real. Safe to run twice."""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from apps.accounts.models import User
from apps.grants import services
from apps.grants.models import Call, Criterion, FormQuestion, Program
from apps.organizations.models import Organization
from apps.providers.models import PoolPeriod

TOKYO_17H = datetime.time(17, 0)

RUBRIC = [  # (ja, en, weight)
    ("新規性・独自性", "Novelty", "3"),
    ("技術的な実現可能性", "Technical feasibility", "2"),
    ("社会・産業へのインパクト", "Impact", "2"),
    ("GPU 計画の妥当性", "Soundness of the GPU plan", "1"),
]


def _at_17(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, TOKYO_17H))


class Command(BaseCommand):
    help = "Load demo grant programs, calls, applications, reviews and an award (needs seed_demo)."

    def handle(self, *args, **options):
        if Program.objects.filter(slug="startup-poc").exists():
            self.stdout.write("Grant demo data already loaded.")
            return
        if not Organization.objects.filter(slug="neuroforge-inc").exists():
            raise CommandError("Run seed_demo first: the grant demo uses its organizations and pools.")
        with (
            override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
            transaction.atomic(),
        ):
            self._load()
        self.stdout.write(self.style.SUCCESS("Grant programs loaded: /programs/"))
        self.stdout.write("  reviewer: owner@ncais.example (password as for the demo)")

    def _user(self, email: str) -> User:
        return User.objects.get(email=email)

    def _call(self, program, title_ja, title_en, opens, closes, budget, questions=()):
        call = Call.objects.create(
            program=program,
            title_ja=title_ja,
            title_en=title_en,
            description_ja="応募前にプログラムの条件をご確認ください。締切を過ぎた提出は受け付けません。",
            description_en=(
                "Please check the program's conditions before applying. Late submissions are refused."
            ),
            opens_at=opens,
            closes_at=closes,
            budget=budget,
            reviews_per_application=2,
        )
        for position, (ja, en, weight) in enumerate(RUBRIC, start=1):
            Criterion.objects.create(
                call=call, name_ja=ja, name_en=en, weight=weight, max_score=5, position=position
            )
        for position, (ja, en) in enumerate(questions, start=1):
            FormQuestion.objects.create(call=call, label_ja=ja, label_en=en, position=position)
        return call

    def _load(self):
        staff = self._user("secretariat@gpu-alliance.example")
        today = timezone.localdate()
        startup = Program.objects.create(
            slug="startup-poc",
            kind=Program.Kind.STARTUP_POC,
            name_ja="スタートアップ PoC 支援プログラム",
            name_en="Startup proof-of-concept program",
            description_ja=(
                "概念実証（PoC）段階のスタートアップに、最長 6 か月・最大 5,000 GPU 時間を無償で提供し、"
                "アライアンス会員企業のエンジニアがメンターとして伴走します。"
            ),
            description_en=(
                "Free GPU time for startups at the proof-of-concept stage: up to 5,000 GPU-hours for up to "
                "six months, with a mentor from a member company."
            ),
            eligible_kinds=["startup"],
            allows_non_members=False,
            max_company_age_years=5,
            max_gpu_hours=5000,
            max_duration_months=6,
            offers_mentoring=True,
        )
        academic = Program.objects.create(
            slug="academic-research",
            kind=Program.Kind.ACADEMIC,
            name_ja="学術研究 GPU 支援プログラム",
            name_en="Academic research GPU program",
            description_ja=(
                "大学・研究機関の研究に GPU 資源を提供します。アライアンス非会員の大学も応募できます。"
            ),
            description_en=(
                "GPU resources for research at universities and research institutes. Universities that "
                "are not members of the alliance may apply too."
            ),
            eligible_kinds=["academic", "public_body"],
            allows_non_members=True,
            max_gpu_hours=20000,
            max_duration_months=12,
        )
        open_startup = self._call(
            startup,
            "2026年度 スタートアップ PoC 支援 第2回公募",
            "FY2026 startup PoC call, round 2",
            _at_17(today - datetime.timedelta(days=14)),
            _at_17(today + datetime.timedelta(days=21)),
            {"H200": 20000, "B200": 5000},
            questions=[
                ("学習データの出所と権利関係", "Where does the training data come from, and who owns it?")
            ],
        )
        self._call(
            academic,
            "2026年度 学術研究 GPU 支援 公募",
            "FY2026 academic research call",
            _at_17(today - datetime.timedelta(days=7)),
            _at_17(today + datetime.timedelta(days=35)),
            {"H200": 40000, "MI300X": 4000},
        )
        closed = self._call(
            startup,
            "2026年度 スタートアップ PoC 支援 第1回公募",
            "FY2026 startup PoC call, round 1",
            _at_17(today - datetime.timedelta(days=75)),
            _at_17(today - datetime.timedelta(days=30)),
            {"H200": 15000, "B200": 5000},
        )
        # An application in the open call.
        neuroforge = Organization.objects.get(slug="neuroforge-inc")
        owner = self._user("owner@neuroforge.example")
        application = services.application_create(
            call_id=open_startup.pk,
            applicant=owner,
            data={
                "organization": neuroforge,
                "founded_on": datetime.date(2023, 6, 1),
                "pi_name": owner.full_name,
                "pi_email": owner.email,
                "pi_position": "CTO",
                "title": "日本語法律文書に特化した小型 LLM の PoC",
                "abstract": "7B 規模の日本語 LLM を法律文書で継続事前学習し、契約審査の精度を検証する。",
                "plan": "1 か月目: コーパス整備。2–3 か月目: 継続事前学習（H200 で 3,000 GPU 時間）。"
                "4 か月目: 評価と顧客検証。",
                "requested_hours": {"H200": 3000},
                "duration_months": 4,
                "answers": {f"q{open_startup.questions.get().pk}": "公開判例と自社で権利処理した契約書。"},
            },
        )
        services.application_submit(application_id=application.pk, actor=owner)
        # The closed call: applied, reviewed and awarded.
        opened = closed.opens_at + datetime.timedelta(days=3)
        kanade = Organization.objects.get(slug="kanade-ai-inc")
        kanade_owner = self._user("owner@kanade.example")
        awarded = services.application_create(
            call_id=closed.pk,
            applicant=kanade_owner,
            now=opened,
            data={
                "organization": kanade,
                "founded_on": datetime.date(2024, 2, 1),
                "pi_name": kanade_owner.full_name,
                "pi_email": kanade_owner.email,
                "title": "感情表現豊かな日本語音声合成の基盤モデル",
                "abstract": "多話者・多感情の日本語音声合成モデルを H200 で学習する。",
                "plan": "データ収録と前処理の後、2,400 GPU 時間で学習し、主観評価を行う。",
                "requested_hours": {"H200": 2400},
                "duration_months": 3,
            },
        )
        services.application_submit(application_id=awarded.pk, actor=kanade_owner, now=opened)
        reviewers = [self._user("owner@ncais.example"), self._user("member@tias.example")]
        for user in reviewers:
            services.reviewer_add(call_id=closed.pk, user=user, actor=staff)
            services.reviewer_add(call_id=open_startup.pk, user=user, actor=staff)
        services.assignments_auto(call_id=closed.pk, actor=staff)
        services.assignments_auto(call_id=open_startup.pk, actor=staff)
        criteria = list(closed.criteria.all())
        for assignment, marks in zip(
            awarded.assignments.order_by("pk"), ([5, 4, 4, 4], [4, 4, 5, 3]), strict=True
        ):
            services.review_submit(
                assignment_id=assignment.pk,
                actor=assignment.reviewer,
                scores={c.pk: m for c, m in zip(criteria, marks, strict=True)},
                comment="独自データの強みが明確。",
            )
        period = (
            PoolPeriod.objects.filter(
                pool__code="sakura-ishikari-h200", starts_on__lte=today, ends_on__gt=today
            ).first()
            or PoolPeriod.objects.filter(pool__code="sakura-ishikari-h200").order_by("-starts_on").first()
        )
        if period is not None:
            valid_from = max(period.starts_on, min(today, period.ends_on - datetime.timedelta(days=1)))
            services.application_award(
                application_id=awarded.pk,
                actor=staff,
                lines=[(period.pk, "2000")],
                valid_from=valid_from,
                valid_until=min(period.ends_on, services.add_months(valid_from, 3)),
                mentor=self._user("owner@sakura.example"),
                feedback="採択おめでとうございます。申請の 2,400 時間のうち 2,000 時間を配分します。",
            )
