import datetime

import factory
from django.utils import timezone

from apps.grants.models import Application, Call, Criterion, FormQuestion, Program, Reviewer
from tests.factories import OrganizationFactory, OrgRoleFactory, UserFactory


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program

    slug = factory.Sequence(lambda n: f"startup-poc-{n}")
    kind = Program.Kind.STARTUP_POC
    name_ja = factory.Sequence(lambda n: f"スタートアップ PoC 支援 {n}")
    name_en = factory.Sequence(lambda n: f"Startup PoC support {n}")
    description_ja = "PoC 段階のスタートアップに GPU 時間を無償で提供します。"
    description_en = "Free GPU time for startups at the proof-of-concept stage."
    eligible_kinds = factory.LazyFunction(lambda: ["startup"])
    allows_non_members = False
    max_company_age_years = 5
    max_gpu_hours = 5000
    max_duration_months = 6
    offers_mentoring = True


class AcademicProgramFactory(ProgramFactory):
    slug = factory.Sequence(lambda n: f"academic-{n}")
    kind = Program.Kind.ACADEMIC
    name_ja = factory.Sequence(lambda n: f"学術研究支援 {n}")
    name_en = factory.Sequence(lambda n: f"Academic research support {n}")
    eligible_kinds = factory.LazyFunction(lambda: ["academic", "public_body"])
    allows_non_members = True
    max_company_age_years = None
    max_gpu_hours = 20000
    max_duration_months = 12
    offers_mentoring = False


class CallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Call
        skip_postgeneration_save = True

    program = factory.SubFactory(ProgramFactory)
    title_ja = factory.Sequence(lambda n: f"2026年度 第{n}回公募")
    title_en = factory.Sequence(lambda n: f"FY2026 call {n}")
    opens_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(days=7))
    closes_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=7))
    budget = factory.LazyFunction(lambda: {"H200": 10000, "B200": 2000})
    reviews_per_application = 2

    @factory.post_generation
    def rubric(obj, create, extracted, **kwargs):
        if create and extracted is not False:
            Criterion.objects.create(
                call=obj, name_ja="新規性", name_en="Novelty", weight="2", max_score=5, position=1
            )
            Criterion.objects.create(
                call=obj, name_ja="実現可能性", name_en="Feasibility", weight="1", max_score=5, position=2
            )


class QuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FormQuestion

    call = factory.SubFactory(CallFactory)
    label_ja = "データの出所"
    label_en = "Where does the data come from?"
    required = True


class ApplicationFactory(factory.django.DjangoModelFactory):
    """An application of a startup member (its owner applies) in the given state; ``status=`` sets
    the state directly: go through the services to test transitions."""

    class Meta:
        model = Application
        skip_postgeneration_save = True

    call = factory.SubFactory(CallFactory)
    applicant = factory.SubFactory(UserFactory)
    organization = factory.LazyAttribute(lambda o: OrganizationFactory(kind="startup"))
    founded_on = datetime.date(2024, 4, 1)
    pi_name = "研究 太郎"
    pi_email = factory.LazyAttribute(lambda o: o.applicant.email)
    title = factory.Sequence(lambda n: f"医療画像の基盤モデル {n}")
    abstract = "胸部 X 線画像の自己教師あり学習。"
    plan = "1 か月目: データ整備。2 か月目以降: 学習と評価。"
    requested_hours = factory.LazyFunction(lambda: {"H200": 1000})
    duration_months = 3
    status = Application.Status.DRAFT

    @factory.post_generation
    def owner_role(obj, create, extracted, **kwargs):
        if create and obj.organization_id and extracted is not False:
            OrgRoleFactory(organization=obj.organization, user=obj.applicant, role="owner")


class ReviewerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reviewer

    call = factory.SubFactory(CallFactory)
    user = factory.SubFactory(UserFactory)
