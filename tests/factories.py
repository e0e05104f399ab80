import datetime

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

from apps.accounts.models import User
from apps.core.validators import corporate_number_check_digit
from apps.organizations.models import (
    Membership,
    MembershipApplication,
    Organization,
    OrgRole,
    ParticipationTerms,
)
from apps.providers.models import Provider

PASSWORD = "correct-horse-battery-9"


def valid_corporate_number(n: int) -> str:
    base = f"{n:012d}"
    return f"{corporate_number_check_digit(base)}{base}"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.jp")
    full_name = factory.Sequence(lambda n: f"利用者 {n}")
    language = "ja"

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):
        obj.set_password(extracted or PASSWORD)
        if create:
            obj.save(update_fields=["password"])

    @factory.post_generation
    def verified(obj, create, extracted, **kwargs):
        if create and extracted is not False:
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


class StaffFactory(UserFactory):
    is_staff = True
    email = factory.Sequence(lambda n: f"staff{n}@gpu-alliance.example")


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"provider-{n}")
    name_ja = factory.Sequence(lambda n: f"プロバイダ{n}")
    name_en = factory.Sequence(lambda n: f"Provider {n}")


class TermsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ParticipationTerms

    version = factory.Sequence(lambda n: f"1.{n}")
    title_ja = "参加条件"
    title_en = "Participation conditions"
    body_ja = "第1条 目的"
    body_en = "Article 1 Purpose"
    effective_from = factory.LazyFunction(lambda: timezone.localdate() - datetime.timedelta(days=1))
    is_published = True


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"org-{n}")
    name_ja = factory.Sequence(lambda n: f"株式会社テスト{n}")
    name_en = factory.Sequence(lambda n: f"Test {n} Inc.")
    kind = "enterprise"
    corporate_number = factory.Sequence(lambda n: valid_corporate_number(100000 + n))
    address = "東京都千代田区千代田1-1"
    website = factory.Sequence(lambda n: f"https://org{n}.example.jp/")
    home_provider = factory.SubFactory(ProviderFactory, slug="kddi", name_ja="KDDI", name_en="KDDI")
    is_listed = True

    @factory.post_generation
    def membership(obj, create, extracted, **kwargs):
        if create and extracted is not False:
            Membership.objects.create(
                organization=obj,
                tier=kwargs.get("tier", "regular"),
                status=kwargs.get("status", "active"),
                started_on=datetime.date(2026, 4, 1),
            )


class OrgRoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrgRole

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = "member"


class ApplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MembershipApplication

    applicant = factory.SubFactory(UserFactory)
    status = "draft"
    name_ja = factory.Sequence(lambda n: f"申請株式会社{n}")
    name_en = factory.Sequence(lambda n: f"Applicant {n} KK")
    kind = "enterprise"
    corporate_number = factory.Sequence(lambda n: valid_corporate_number(500000 + n))
    address = "大阪府大阪市北区1-1"
    home_provider = factory.SubFactory(ProviderFactory, slug="sakura", name_ja="さくら", name_en="Sakura")
    contact_name = "申請 太郎"
    contact_email = factory.LazyAttribute(lambda o: o.applicant.email)
    intended_use = "LLM の学習"


class PoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "providers.ResourcePool"

    provider = factory.SubFactory(ProviderFactory, slug="sakura", name_ja="さくら", name_en="Sakura")
    code = factory.Sequence(lambda n: f"pool-{n}")
    name = factory.Sequence(lambda n: f"Pool {n}")
    gpu_class = "H200"
    region = "北海道"
    datacenter = "石狩"
    wholesale_rate = "450.00"


class PoolPeriodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "providers.PoolPeriod"

    pool = factory.SubFactory(PoolFactory)
    starts_on = datetime.date(2026, 4, 1)
    ends_on = datetime.date(2026, 7, 1)
    capacity_gpu_hours = "10000.00"


class ProviderOperatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "providers.ProviderOperator"

    provider = factory.SubFactory(ProviderFactory, slug="sakura", name_ja="さくら", name_en="Sakura")
    user = factory.SubFactory(UserFactory)


class QuotaGrantFactory(factory.django.DjangoModelFactory):
    """A grant made through ``services.grant_create`` (capacity check, outbox row, audit event).

    ``state=`` then moves it as delivery would (e.g. "active" with its version applied), for
    tests that need a grant the provider already has; no provider is called."""

    class Meta:
        model = "providers.QuotaGrant"

    organization = factory.SubFactory(OrganizationFactory)
    period = factory.SubFactory(PoolPeriodFactory)
    gpu_hours = "100.00"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from apps.providers import services

        state = kwargs.pop("state", None)
        period = kwargs.pop("period")
        grant = services.grant_create(period_id=period.pk, actor=kwargs.pop("actor", None), **kwargs)
        if state:
            applied = grant.version if state == "active" else None
            model_class.objects.filter(pk=grant.pk).update(state=state, applied_version=applied)
            grant.refresh_from_db()
        return grant


class UsageRecordFactory(factory.django.DjangoModelFactory):
    """A usage record stored through ``services.usage_ingest`` (so the monthly rollup follows)."""

    class Meta:
        model = "providers.UsageRecord"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from apps.providers import services

        grant, provider = kwargs["grant"], kwargs["provider"]
        record = {
            "record_id": kwargs["record_id"],
            "grant_id": str(grant.public_id),
            "gpu_hours": str(kwargs["gpu_hours"]),
            "started_at": kwargs["started_at"].isoformat(),
            "ended_at": kwargs["ended_at"].isoformat(),
        }
        services.usage_ingest(provider=provider, records=[record])
        return model_class.objects.get(provider=provider, record_id=kwargs["record_id"])

    grant = factory.SubFactory(QuotaGrantFactory)
    provider = factory.LazyAttribute(lambda o: o.grant.pool.provider)
    record_id = factory.Sequence(lambda n: f"rec-{n}")
    gpu_hours = "10.0000"
    started_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(hours=2))
    ended_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(hours=1))


class FairSharePolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "allocations.FairSharePolicy"

    name = factory.Sequence(lambda n: f"Policy {n}")
    award_reserve_share = "0"


class AllocationRoundFactory(factory.django.DjangoModelFactory):
    """A round in the state given (``status=``); go through the services to move it."""

    class Meta:
        model = "allocations.AllocationRound"

    name = factory.Sequence(lambda n: f"2026年度 第1四半期 {n}")
    fiscal_year = 2026
    period_start = datetime.date(2026, 4, 1)
    period_end = datetime.date(2026, 7, 1)
    policy = factory.SubFactory(FairSharePolicyFactory)
