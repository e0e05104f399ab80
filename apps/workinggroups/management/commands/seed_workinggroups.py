"""Demo working groups on top of ``seed_demo``'s people: each with its chair and members, a
meeting, a discussion and an open vote. Idempotent: groups that exist are left alone."""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from apps.accounts.models import User
from apps.workinggroups import services
from apps.workinggroups.models import WorkingGroup

STAFF_EMAIL = "secretariat@gpu-alliance.example"

GROUPS = [
    {
        "slug": "medical-ai",
        "data": {
            "name_ja": "医療AI分科会",
            "name_en": "Medical AI",
            "industry": "medical",
            "visibility": "public",
            "join_policy": "request",
            "allow_outside_researchers": True,
            "charter_ja": (
                "医療画像・電子カルテ・創薬における AI 活用の知見を共有し、"
                "**国内データセンター**での学習・推論に関する指針をまとめる。\n\n"
                "- 3 省 2 ガイドラインに沿った GPU 環境の要件整理\n"
                "- 匿名加工データの共有ルール\n- 年 4 回の定例会"
            ),
            "charter_en": (
                "Share know-how on AI for medical imaging, health records and drug discovery, and write "
                "guidance for training and inference in **domestic data centres**.\n\n"
                "- GPU environment requirements under the Japanese medical-information guidelines\n"
                "- Rules for sharing anonymised data\n- Four regular meetings a year"
            ),
        },
        "chair": "owner@mirai-pharma.example",
        "members": ["owner@neuroforge.example", "member@neuroforge.example", "owner@tias.example"],
        "meeting": ("第3回 定例会：医療画像の学習基盤", "日本橋 アライアンス会議室 / オンライン併用"),
        "thread": (
            "匿名加工データの共有ルール案",
            "たたき台を共有します。\n\n1. 共有範囲は分科会内に限定\n2. 再識別の禁止を明記\n\n"
            "ご意見ください。",
            "2. に **外部委託先** も含めるべきだと思います。",
        ),
        "motion": ("共有ルール案を第1版として承認する", "organization", False),
    },
    {
        "slug": "manufacturing-ai",
        "data": {
            "name_ja": "製造業AI分科会",
            "name_en": "Manufacturing AI",
            "industry": "manufacturing",
            "visibility": "members_only",
            "join_policy": "open",
            "allow_outside_researchers": False,
            "charter_ja": (
                "外観検査・予知保全・設計最適化の AI 事例を持ち寄り、GPU 利用の標準構成を検討する。"
            ),
            "charter_en": (
                "Bring together AI cases in visual inspection, predictive maintenance and design "
                "optimisation, and agree on standard GPU set-ups."
            ),
        },
        "chair": "owner@toto-motor.example",
        "members": ["owner@kddi.example", "owner@kanade.example"],
        "meeting": ("キックオフ会合", "名古屋 ミーティングスペース"),
        "thread": (
            "外観検査モデルの学習時間ベンチマーク",
            "H200 と B200 での学習時間を比較した結果を共有します。",
            "GB200 NVL72 でも測定できます。次回の会合で報告します。",
        ),
        "motion": ("ベンチマーク手順を分科会標準とする", "person", False),
    },
    {
        "slug": "finance-ai",
        "data": {
            "name_ja": "金融AI分科会",
            "name_en": "Finance AI",
            "industry": "finance",
            "visibility": "private",
            "join_policy": "invitation",
            "allow_outside_researchers": False,
            "charter_ja": "金融機関における生成 AI の安全な利用とデータ主権の要件を議論する（非公開）。",
            "charter_en": (
                "Discuss safe use of generative AI and data-sovereignty requirements in finance (private)."
            ),
        },
        "chair": "owner@yamato-bank.example",
        "members": ["owner@sakura.example"],
        "meeting": ("第1回 非公開会合", "オンライン"),
        "thread": (
            "監査ログ要件の整理",
            "監査対応で必要なログ項目を洗い出しましょう。",
            "GPU 利用ログの保存期間は 7 年を想定しています。",
        ),
        "motion": ("幹事会社の選任", "organization", True),
    },
    {
        "slug": "gpu-operations",
        "data": {
            "name_ja": "GPU運用ベストプラクティス分科会",
            "name_en": "GPU operations best practice",
            "industry": "gpu_operations",
            "visibility": "public",
            "join_policy": "open",
            "allow_outside_researchers": True,
            "charter_ja": "大規模 GPU クラスタの運用（冷却、障害対応、スケジューリング）の知見を共有する。",
            "charter_en": "Share operating know-how for large GPU clusters: cooling, incidents, scheduling.",
        },
        "chair": "owner@sakura.example",
        "members": ["owner@kddi.example", "owner@highreso.example", "member@highreso.example"],
        "meeting": ("液冷ラック運用の勉強会", "石狩データセンター 見学室 / オンライン"),
        "thread": (
            "ジョブスケジューラの公平性設定",
            "Slurm の fair-share 設定をどうしていますか？",
            "当社では利用実績の半減期を 14 日にしています。",
        ),
        "motion": ("運用チェックリスト v1.0 の採択", "person", False),
    },
]


class Command(BaseCommand):
    help = "Load demo working groups (needs the people of seed_demo). Safe to run again."

    def handle(self, *args, **options):
        staff = User.objects.filter(email=STAFF_EMAIL).first()
        if staff is None:
            raise CommandError("Run `manage.py seed_demo` first: the working groups use its people.")
        created = 0
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            for spec in GROUPS:
                if WorkingGroup.objects.filter(slug=spec["slug"]).exists():
                    continue
                with transaction.atomic():
                    self._load(spec, staff)
                created += 1
        self.stdout.write(self.style.SUCCESS(f"Working groups: {created} created."))

    @staticmethod
    def _user(email: str) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            raise CommandError(f"Demo user {email} is missing: run `manage.py seed_demo` first.")
        return user

    def _load(self, spec: dict, staff: User) -> None:
        chair = self._user(spec["chair"])
        group = services.group_create(actor=staff, data=spec["data"], slug=spec["slug"], chair=chair)
        services.group_activate(group_id=group.pk, actor=staff)
        members = [self._user(email) for email in spec["members"]]
        for person in members:
            services.member_add(group_id=group.pk, actor=chair, email=person.email)
        if len(members) > 1:
            seat = group.members.get(user=members[0])
            services.member_set_role(seat_id=seat.pk, actor=chair, role="secretary")

        now = timezone.localtime()
        start = (now + datetime.timedelta(days=10)).replace(hour=14, minute=0, second=0, microsecond=0)
        title, place = spec["meeting"]
        services.meeting_create(
            group_id=group.pk,
            actor=chair,
            data={
                "title": title,
                "starts_at": start,
                "ends_at": start + datetime.timedelta(hours=2),
                "location": place,
                "online_url": f"https://meet.gpu-alliance.example/{spec['slug']}",
                "agenda": "1. 開会・出席確認\n2. 前回議事録の確認\n3. 報告事項\n4. 討議\n5. 次回日程",
            },
        )
        past = start - datetime.timedelta(days=60)
        services.meeting_create(
            group_id=group.pk,
            actor=chair,
            data={
                "title": "設立準備会",
                "starts_at": past,
                "ends_at": past + datetime.timedelta(hours=1),
                "location": place,
                "agenda": "1. 設立趣旨\n2. 幹事の選任",
            },
        )

        thread_title, first, reply = spec["thread"]
        author = members[0] if members else chair
        thread = services.thread_create(group_id=group.pk, actor=author, title=thread_title, body=first)
        services.post_create(thread_id=thread.pk, actor=chair, body=reply)

        motion_title, scope, secret = spec["motion"]
        services.motion_create(
            group_id=group.pk,
            actor=chair,
            title=motion_title,
            description="分科会規約第5条に基づき、以下の議案を電子投票に付します。",
            options=["賛成 / For", "反対 / Against", "棄権 / Abstain"],
            scope=scope,
            is_secret=secret,
            opens_at=timezone.now(),
            closes_at=timezone.now() + datetime.timedelta(days=14),
            quorum_kind="percent",
            quorum_value=50,
        )
