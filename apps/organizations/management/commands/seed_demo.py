"""Demo data: the three founding providers, a dozen member organizations of every kind, people
with printed logins, and membership applications in every state. Built through the services,
so the audit chain is real. Safe to run twice: it does nothing if the demo is already there."""

import datetime
from decimal import Decimal

from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings

from apps.accounts.models import User
from apps.accounts.services import secretariat_group_ensure
from apps.core.validators import corporate_number_check_digit
from apps.governance.services import audit_record
from apps.organizations import services
from apps.organizations.models import MembershipApplication, Organization, ParticipationTerms
from apps.providers import services as grant_services
from apps.providers.models import PoolPeriod, Provider, ResourcePool

DEMO_PASSWORD = "gpu-alliance-demo"
SECRETARIAT_EMAIL = "secretariat@gpu-alliance.example"
SIMULATOR_BASE_PORT = 8101  # provider simulators of the demo: 8101 (kddi), 8102 (sakura), 8103 (highreso)
# Published on purpose: the demo secretariat account's TOTP secret (see `manage.py demo_totp`).
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPGPUALLIANCEDEMO2"

PROVIDERS = [
    (
        "kddi",
        "KDDI株式会社",
        "KDDI Corporation",
        "https://www.kddi.com/",
        "NVIDIA GB200 NVL72 のラックスケール GPU クラウド。",
        "Rack-scale NVIDIA GB200 NVL72 GPU cloud.",
    ),
    (
        "sakura",
        "さくらインターネット株式会社",
        "SAKURA internet Inc.",
        "https://www.sakura.ad.jp/",
        "高火力 GPU クラウド（B200・H200）。",
        "Koukaryoku GPU cloud (B200, H200).",
    ),
    (
        "highreso",
        "株式会社ハイレゾ",
        "HIGHRESO Co., Ltd.",
        "https://highreso.jp/",
        "GPUSOROBAN：低価格な H200 クラウド。",
        "GPUSOROBAN: low-cost H200 cloud.",
    ),
]

TERMS_V1_JA = """第1条（目的）
本アライアンスは、国内データセンターにおける GPU 計算資源の安定供給と、会員間の公平な資源配分を目的とする。

第2条（参加資格）
企業・スタートアップ・大学・公的機関は、規模を問わず本条件に同意のうえ参加を申請できる。

第3条（資源配分）
GPU 割当は事務局が公表するフェアシェア方式に従い、配分の結果は透明性レポートとして公開する。

第4条（データ主権）
会員のデータは国内のデータセンターで処理される。

第5条（遵守事項）
会員は各プロバイダの利用規約および関係法令を遵守する。"""

TERMS_V1_EN = """Article 1 (Purpose)
The alliance aims at a stable supply of GPU compute in domestic data centres and a fair allocation of it among members.

Article 2 (Eligibility)
Enterprises, startups, universities and public bodies of any size may apply after accepting these conditions.

Article 3 (Allocation)
GPU quota is allocated by the fair-share rule the secretariat publishes; results are published in the transparency report.

Article 4 (Data sovereignty)
Members' data is processed in domestic data centres.

Article 5 (Compliance)
Members comply with each provider's terms of use and the applicable laws."""

# (name_ja, name_en, kind, tier, provider slug, owner e-mail, owner name, public description ja/en)
ORGANIZATIONS = [
    (
        "KDDI株式会社",
        "KDDI Corporation",
        "enterprise",
        "founding",
        "kddi",
        "owner@kddi.example",
        "高橋 一郎",
        "アライアンス創設プロバイダ。",
        "Founding provider of the alliance.",
    ),
    (
        "さくらインターネット株式会社",
        "SAKURA internet Inc.",
        "enterprise",
        "founding",
        "sakura",
        "owner@sakura.example",
        "田中 美咲",
        "アライアンス創設プロバイダ。",
        "Founding provider of the alliance.",
    ),
    (
        "株式会社ハイレゾ",
        "HIGHRESO Co., Ltd.",
        "enterprise",
        "founding",
        "highreso",
        "owner@highreso.example",
        "佐藤 健",
        "アライアンス創設プロバイダ。",
        "Founding provider of the alliance.",
    ),
    (
        "ミライ製薬株式会社",
        "Mirai Pharmaceutical Co., Ltd.",
        "enterprise",
        "regular",
        "sakura",
        "owner@mirai-pharma.example",
        "鈴木 花子",
        "創薬 AI と医療画像解析。",
        "AI drug discovery and medical imaging.",
    ),
    (
        "東都自動車工業株式会社",
        "Toto Motor Industries",
        "enterprise",
        "regular",
        "kddi",
        "owner@toto-motor.example",
        "伊藤 大輔",
        "製造 AI・自動運転シミュレーション。",
        "Manufacturing AI and driving simulation.",
    ),
    (
        "やまと銀行株式会社",
        "Yamato Bank, Ltd.",
        "enterprise",
        "associate",
        "highreso",
        "owner@yamato-bank.example",
        "渡辺 直樹",
        "金融 AI（不正検知）。",
        "Finance AI for fraud detection.",
    ),
    (
        "株式会社ニューロフォージ",
        "NeuroForge Inc.",
        "startup",
        "regular",
        "highreso",
        "owner@neuroforge.example",
        "山本 翔",
        "日本語 LLM の事前学習。",
        "Pre-training Japanese LLMs.",
    ),
    (
        "株式会社カナデAI",
        "Kanade AI Inc.",
        "startup",
        "associate",
        "sakura",
        "owner@kanade.example",
        "中村 奏",
        "音声合成の基盤モデル。",
        "Foundation models for speech synthesis.",
    ),
    (
        "株式会社ヤタガラス・ロボティクス",
        "Yatagarasu Robotics Inc.",
        "startup",
        "associate",
        "kddi",
        "owner@yatagarasu.example",
        "小林 翼",
        "ロボット基盤モデル。",
        "Robotics foundation models.",
    ),
    (
        "東京先端科学大学",
        "Tokyo Institute of Advanced Science",
        "academic",
        "academic",
        "sakura",
        "owner@tias.example",
        "加藤 教授",
        "計算科学と AI 研究。",
        "Computational science and AI research.",
    ),
    (
        "関西情報工科大学",
        "Kansai University of Information Technology",
        "academic",
        "academic",
        "highreso",
        "owner@kuit.example",
        "吉田 准教授",
        "",
        "",
    ),
    (
        "国立AI安全研究センター",
        "National Center for AI Safety",
        "public_body",
        "regular",
        "kddi",
        "owner@ncais.example",
        "山田 所長",
        "AI の安全性評価。",
        "AI safety evaluation.",
    ),
]

FY2026_QUARTERS = [
    (datetime.date(2026, 4, 1), datetime.date(2026, 7, 1)),
    (datetime.date(2026, 7, 1), datetime.date(2026, 10, 1)),
    (datetime.date(2026, 10, 1), datetime.date(2027, 1, 1)),
    (datetime.date(2027, 1, 1), datetime.date(2027, 4, 1)),
]

# (provider, code, name, GPU class, vendor, region, data centre, JPY per GPU-hour, GPU-hours per quarter)
POOLS = [
    (
        "kddi",
        "kddi-sakai-gb200",
        "GB200 NVL72 ラック",
        "GB200",
        "nvidia",
        "大阪",
        "堺 DC",
        "980.00",
        "120000",
    ),
    (
        "sakura",
        "sakura-ishikari-b200",
        "高火力 B200",
        "B200",
        "nvidia",
        "北海道",
        "石狩 DC",
        "720.00",
        "90000",
    ),
    (
        "sakura",
        "sakura-ishikari-h200",
        "高火力 H200",
        "H200",
        "nvidia",
        "北海道",
        "石狩 DC",
        "520.00",
        "150000",
    ),
    (
        "sakura",
        "sakura-ishikari-mi300x",
        "MI300X 検証環境",
        "MI300X",
        "amd",
        "北海道",
        "石狩 DC",
        "430.00",
        "8000",
    ),
    (
        "highreso",
        "highreso-kagawa-h200",
        "GPUSOROBAN H200",
        "H200",
        "nvidia",
        "香川",
        "高松 DC",
        "380.00",
        "110000",
    ),
]

# (organization slug, pool code, GPU-hours) for the current quarter
DEMO_GRANTS = [
    ("neuroforge-inc", "highreso-kagawa-h200", "24000"),
    ("neuroforge-inc", "sakura-ishikari-b200", "12000"),
    ("mirai-pharmaceutical-co-ltd", "sakura-ishikari-h200", "18000"),
    ("toto-motor-industries", "kddi-sakai-gb200", "30000"),
    ("kanade-ai-inc", "sakura-ishikari-h200", "6000"),
    ("yatagarasu-robotics-inc", "kddi-sakai-gb200", "9000"),
    ("tokyo-institute-of-advanced-science", "sakura-ishikari-mi300x", "3000"),
    ("tokyo-institute-of-advanced-science", "highreso-kagawa-h200", "15000"),
    ("national-center-for-ai-safety", "kddi-sakai-gb200", "8000"),
]

APPLICATIONS = [  # (state, name_ja, name_en, kind, provider, applicant e-mail, applicant name)
    (
        "draft",
        "株式会社アオバ・ビジョン",
        "Aoba Vision Inc.",
        "startup",
        "sakura",
        "apply-draft@aoba.example",
        "青葉 太郎",
    ),
    (
        "submitted",
        "北斗データ株式会社",
        "Hokuto Data Co., Ltd.",
        "enterprise",
        "kddi",
        "apply@hokuto.example",
        "北斗 次郎",
    ),
    (
        "under_review",
        "株式会社みなとメディカル",
        "Minato Medical Inc.",
        "startup",
        "highreso",
        "apply@minato-med.example",
        "港 三郎",
    ),
    (
        "changes_requested",
        "さくら精密工業株式会社",
        "Sakura Precision Industries",
        "enterprise",
        "sakura",
        "apply@sakura-precision.example",
        "桜 四郎",
    ),
    ("rejected", "合同会社スカイネット", "Skynet LLC", "startup", "kddi", "apply@skynet.example", "空 五郎"),
    (
        "withdrawn",
        "琉球海洋大学",
        "Ryukyu Ocean University",
        "academic",
        "highreso",
        "apply@ryukyu.example",
        "海野 六郎",
    ),
]


def demo_corporate_number(seq: int) -> str:
    base = f"0104{seq:08d}"
    return f"{corporate_number_check_digit(base)}{base}"


class Command(BaseCommand):
    help = "Load the demo: providers, organizations, users and applications in every state."

    # The other apps' demo data (idempotent commands), loaded after this one's people and pools.
    APP_SEEDS = ("seed_allocations", "seed_workinggroups", "seed_grants")

    def handle(self, *args, **options):
        # The demo's e-mails would only flood the console: keep them in memory.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            if Provider.objects.filter(slug="kddi").exists():
                self.stdout.write("Demo data already loaded.")
                self._secretariat_without_superuser()
            else:
                with transaction.atomic():
                    self._load()
            for command in self.APP_SEEDS:
                call_command(command, stdout=self.stdout)
        self._print_logins()

    @transaction.atomic
    def _secretariat_without_superuser(self):
        """Demo databases made before issue 11 had a superuser secretariat: make it plain staff in
        the secretariat group, as a fresh demo has it."""
        desk = User.objects.filter(email=SECRETARIAT_EMAIL, is_superuser=True).first()
        if desk is None:
            return
        desk.is_superuser = False
        desk.save(update_fields=["is_superuser"])
        audit_record(actor=None, action="user.superuser_removed", target=desk, after={"is_superuser": False})
        secretariat_group_ensure(members=[desk])

    def _user(self, email, name, *, staff=False, language="ja"):
        user = User.objects.create_user(
            email=email,
            password=DEMO_PASSWORD,
            full_name=name,
            is_staff=staff,
            language=language,
        )
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        return user

    def _load(self):
        providers = {}
        for port, (slug, ja, en, url, dja, den) in enumerate(PROVIDERS, start=SIMULATOR_BASE_PORT):
            providers[slug] = Provider.objects.create(
                slug=slug,
                name_ja=ja,
                name_en=en,
                homepage=url,
                description_ja=dja,
                description_en=den,
                api_base_url=f"http://127.0.0.1:{port}/v1",
                api_key_id=f"{slug}-demo",
            )
        ParticipationTerms.objects.create(
            version="1.0",
            title_ja="GPU アライアンス参加条件",
            title_en="GPU Alliance participation conditions",
            body_ja=TERMS_V1_JA,
            body_en=TERMS_V1_EN,
            effective_from=datetime.date(2026, 4, 1),
            is_published=True,
        )
        ParticipationTerms.objects.create(
            version="1.1",
            title_ja="GPU アライアンス参加条件",
            title_en="GPU Alliance participation conditions",
            body_ja=TERMS_V1_JA
            + "\n\n第6条（他社アクセラレータ）\nAMD・Intel・国産チップ等の計算資源も同条件で扱う。",
            body_en=TERMS_V1_EN
            + "\n\nArticle 6 (Other accelerators)\nAMD, Intel and domestic accelerators are handled under the same conditions.",
            effective_from=datetime.date(2026, 10, 1),
            is_published=True,
        )
        # Staff, not a superuser: its admin rights come from the secretariat group.
        staff = self._user(SECRETARIAT_EMAIL, "事務局 管理者", staff=True)
        secretariat_group_ensure(members=[staff])
        TOTP.activate(staff, DEMO_TOTP_SECRET)

        seq = 1
        for name_ja, name_en, kind, tier, provider, email, person, dja, den in ORGANIZATIONS:
            owner = self._user(email, person)
            number = demo_corporate_number(seq) if kind in ("enterprise", "startup", "academic") else ""
            seq += 1
            application = services.application_create(
                applicant=owner,
                data=self._app_data(name_ja, name_en, kind, number, providers[provider], email, person, tier),
            )
            services.application_submit(application_id=application.pk, actor=owner, accept_terms=True)
            services.application_start_review(application_id=application.pk, reviewer=staff)
            org = services.application_approve(
                application_id=application.pk, reviewer=staff, tier=tier, reason="ようこそ。"
            )
            services.organization_update_profile(
                organization_id=org.pk,
                actor=owner,
                data={
                    "description_ja": dja,
                    "description_en": den,
                    "website": f"https://{email.split('@')[1]}/",
                    "is_listed": name_en != "Kansai University of Information Technology",
                },
            )
            # A colleague joins through an invitation, as in real life.
            colleague_email = f"member@{email.split('@')[1]}"
            colleague = self._user(
                colleague_email, f"{person.split()[0]} 同僚", language="en" if seq % 3 == 0 else "ja"
            )
            _inv, token = services.invitation_create(
                organization_id=org.pk, inviter=owner, email=colleague_email, role="technical"
            )
            services.invitation_accept(token=token, user=colleague)

        for state, name_ja, name_en, kind, provider, email, person in APPLICATIONS:
            applicant = self._user(email, person)
            number = demo_corporate_number(seq) if kind in ("enterprise", "startup") else ""
            seq += 1
            application = services.application_create(
                applicant=applicant,
                data=self._app_data(
                    name_ja, name_en, kind, number, providers[provider], email, person, "regular"
                ),
            )
            if state == "draft":
                continue
            if state == "withdrawn":
                services.application_submit(application_id=application.pk, actor=applicant, accept_terms=True)
                services.application_withdraw(
                    application_id=application.pk,
                    actor=applicant,
                    reason="学内の予算措置が決まってから再申請します。",
                )
                continue
            services.application_submit(application_id=application.pk, actor=applicant, accept_terms=True)
            if state == "submitted":
                continue
            services.application_start_review(application_id=application.pk, reviewer=staff)
            if state == "changes_requested":
                services.application_request_changes(
                    application_id=application.pk,
                    reviewer=staff,
                    reason="想定する GPU 時間の内訳（月別）を追記してください。",
                )
            elif state == "rejected":
                services.application_reject(
                    application_id=application.pk,
                    reviewer=staff,
                    reason="国内データセンターでの処理という参加条件を満たしていません。",
                )
        assert MembershipApplication.objects.count() == len(ORGANIZATIONS) + len(APPLICATIONS)
        self._load_pools_and_grants(providers, staff)

    def _load_pools_and_grants(self, providers, staff):
        """Pools at each provider, fiscal-year 2026 quarters as capacity periods, and grants for
        the current quarter (delivered to the simulators when the demo starts)."""
        periods = {}
        for slug, code, name, gpu_class, vendor, region, dc, rate, quarterly in POOLS:
            pool = ResourcePool.objects.create(
                provider=providers[slug],
                code=code,
                name=name,
                gpu_class=gpu_class,
                vendor=vendor,
                region=region,
                datacenter=dc,
                data_residency="jp",
                wholesale_rate=Decimal(rate),
            )
            for starts, ends in FY2026_QUARTERS:
                periods[(code, starts)] = PoolPeriod.objects.create(
                    pool=pool, starts_on=starts, ends_on=ends, capacity_gpu_hours=Decimal(quarterly)
                )
        orgs = {o.slug: o for o in Organization.objects.select_related("membership")}
        quarter = FY2026_QUARTERS[2][0]
        for org_slug, code, hours in DEMO_GRANTS:
            grant_services.grant_create(
                organization=orgs[org_slug],
                period_id=periods[(code, quarter)].pk,
                gpu_hours=hours,
                actor=staff,
                source_ref="demo",
            )

    @staticmethod
    def _app_data(name_ja, name_en, kind, number, provider, email, person, tier):
        return {
            "name_ja": name_ja,
            "name_en": name_en,
            "kind": kind,
            "corporate_number": number,
            "postal_code": "100-0001",
            "address": "東京都千代田区千代田1-1",
            "website": "",
            "home_provider": provider,
            "requested_tier": tier if tier != "founding" else "regular",
            "contact_name": person,
            "contact_email": email,
            "contact_phone": "03-0000-0000",
            "technical_contact_email": "",
            "intended_use": "LLM の学習と推論。H200 で月 2,000 GPU 時間程度。",
        }

    def _print_logins(self):
        self.stdout.write(self.style.SUCCESS(f"\nDemo logins (password for all: {DEMO_PASSWORD})"))
        self.stdout.write("  secretariat (staff):     secretariat@gpu-alliance.example")
        self.stdout.write(f"     its TOTP secret is {DEMO_TOTP_SECRET}; `make totp` prints the current code")
        self.stdout.write("  org owner (startup):     owner@neuroforge.example")
        self.stdout.write("  org owner (university):  owner@tias.example")
        self.stdout.write("  org member:              member@neuroforge.example")
        self.stdout.write("  applicant (changes requested): apply@sakura-precision.example")
        self.stdout.write("  applicant (draft):       apply-draft@aoba.example\n")
