import factory

from accounts.models import Company, User


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Company {n}")
    slug = factory.Sequence(lambda n: f"company-{n}")
    time_zone = "Europe/Paris"
    currency = "EUR"
    billing_email = factory.LazyAttribute(lambda c: f"billing@{c.slug}.example")


class UserFactory(factory.django.DjangoModelFactory):
    """A company user; pass company=None, is_staff=True for an operator."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    company = factory.SubFactory(CompanyFactory)
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()
