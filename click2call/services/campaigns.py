"""A company's own click2call set-up: campaigns and their keys, operators, tariffs and rates,
blocked prefixes and comment types. The portal and the admin write through here."""

import secrets

from django.core.exceptions import ValidationError
from django.db import transaction

from click2call.models import (
    BlockedPrefix,
    Campaign,
    CampaignOperator,
    CommentField,
    CommentType,
    Operator,
    Rate,
    Tariff,
    generate_public_key,
    hash_secret_key,
)
from click2call.services.rating import NumberRefused, blocked_prefix_find, operator_number_check

SECRET_KEY_PREFIX = "c2c_sk_"


def campaign_save(*, campaign: Campaign) -> Campaign:
    """Create or update a campaign of its company; its tariff must be the same company's, and a
    new tariff or default country must still rate every operator it rings."""
    if campaign.tariff.company_id != campaign.company_id:
        raise ValidationError({"tariff": "Choose one of your tariffs."})
    campaign.full_clean()
    if campaign.pk:
        before = Campaign.objects.filter(pk=campaign.pk).values("tariff_id", "default_country").first()
        if before and before != {
            "tariff_id": campaign.tariff_id,
            "default_country": campaign.default_country,
        }:
            links = CampaignOperator.objects.filter(campaign=campaign).select_related("operator")
            operators = [link.operator for link in links]
            campaign_operators_check(campaign=campaign, operators=operators)
    campaign.save()
    return campaign


def _operator_refusal(*, campaign: Campaign, operator: Operator) -> str | None:
    """Why the campaign may not ring this operator's number, or None (dial strings are staff's)."""
    if not operator.number:
        return None
    try:
        operator_number_check(campaign=campaign, number=operator.number)
    except NumberRefused as refused:
        reason = {
            "blocked_prefix": "its number is in one of your blocked prefixes",
            "unsupported_destination": f"the tariff {campaign.tariff.name} has no rate for its number",
        }.get(refused.code, refused.detail)
        return f"{operator.name} ({operator.number}) cannot be rung by {campaign.name}: {reason}."
    return None


def campaign_operators_check(*, campaign: Campaign, operators: list[Operator]) -> None:
    """Each operator's number is one the campaign may call (not blocked, rated in its tariff)."""
    refusals = [_operator_refusal(campaign=campaign, operator=operator) for operator in operators]
    if any(refusals):
        raise ValidationError([refusal for refusal in refusals if refusal])


def campaign_deactivate(*, campaign: Campaign) -> Campaign:
    """A campaign is never deleted once visitors used it (its requests are evidence): it stops taking them."""
    campaign.active = False
    campaign.save(update_fields=["active"])
    return campaign


@transaction.atomic
def campaign_delete(*, campaign: Campaign) -> None:
    """Only a campaign nobody has used yet can go. Decided on the locked campaign: a visitor's
    request posted meanwhile is either seen here or waits and finds the campaign gone."""
    locked = Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
    if locked is None:
        return
    if locked.requests.exists():
        raise ValidationError("This campaign has call requests: deactivate it instead.")
    locked.delete()


def campaign_public_key_rotate(*, campaign: Campaign) -> str:
    """A new public key: banners still carrying the old one stop working (in the other web
    processes within C2C_CAMPAIGN_CACHE_SECONDS)."""
    campaign.public_key = generate_public_key()
    campaign.save(update_fields=["public_key"])
    return campaign.public_key


def campaign_secret_key_rotate(*, campaign: Campaign) -> str:
    """A new secret key for server-to-server calls, returned this once: only its hash and hint are kept."""
    key = SECRET_KEY_PREFIX + secrets.token_urlsafe(32)
    campaign.secret_key_hash = hash_secret_key(key)
    campaign.secret_key_hint = key[:8]
    campaign.save(update_fields=["secret_key_hash", "secret_key_hint"])
    return key


def campaign_operators_set(*, campaign: Campaign, operators: list[Operator]) -> None:
    """The campaign's operators in the order they are rung (position 0 first); all of its company."""
    if any(operator.company_id != campaign.company_id for operator in operators):
        raise ValidationError("Choose your own operators.")
    campaign_operators_check(campaign=campaign, operators=operators)
    with transaction.atomic():
        CampaignOperator.objects.filter(campaign=campaign).delete()
        CampaignOperator.objects.bulk_create(
            CampaignOperator(campaign=campaign, operator=operator, position=position)
            for position, operator in enumerate(operators)
        )


def operator_check(*, operator: Operator) -> None:
    """A company's operator is a number checked like a visitor's: not in the company's blocked
    prefixes, and rated by the tariff of every campaign that rings it (ValidationError on number)."""
    if not operator.number:
        return
    blocked = blocked_prefix_find(company=operator.company_id, number=operator.number)
    if blocked:
        raise ValidationError({"number": f"Calls to {operator.number} are blocked (your prefix {blocked})."})
    if operator.pk:
        links = CampaignOperator.objects.filter(operator=operator).select_related("campaign__tariff")
        refusals = [_operator_refusal(campaign=link.campaign, operator=operator) for link in links]
        if any(refusals):
            raise ValidationError({"number": [refusal for refusal in refusals if refusal]})


def operator_save(*, operator: Operator) -> Operator:
    operator.full_clean()
    operator_check(operator=operator)
    operator.save()
    return operator


def tariff_save(*, tariff: Tariff) -> Tariff:
    tariff.full_clean()
    tariff.save()
    return tariff


def rate_save(*, rate: Rate) -> Rate:
    """A rate of the tariff: a prefix already there gets the new destination and price."""
    rate.full_clean(validate_constraints=False)
    rate, _ = Rate.objects.update_or_create(
        tariff=rate.tariff,
        prefix=rate.prefix,
        defaults={"destination": rate.destination, "price": rate.price},
    )
    return rate


def blocked_prefix_add(*, company, prefix: str, reason: str = "") -> BlockedPrefix:
    blocked = BlockedPrefix(company=company, prefix=prefix, reason=reason)
    blocked.full_clean()
    blocked.save()
    return blocked


def comment_type_save(*, comment_type: CommentType, fields: list[CommentField]) -> CommentType:
    """A comment type and its fields as the form gives them (a field left out is removed;
    a choice field needs choices). Comments already made keep the values they were given."""
    names = [field.name for field in fields]
    if len(names) != len(set(names)):
        raise ValidationError("Two fields have the same name.")
    for field in fields:
        if field.kind == CommentField.Kind.CHOICE and not field.choice_list():
            raise ValidationError(f"The choice field {field.name!r} needs its choices, one a line.")
    with transaction.atomic():
        comment_type.full_clean()
        comment_type.save()
        kept = [field.pk for field in fields if field.pk]
        comment_type.fields.exclude(pk__in=kept).delete()
        # Names are unique per type and each field is saved on its own: a renamed field first
        # leaves its old name free, so that two fields can swap their names.
        stored = dict(comment_type.fields.values_list("pk", "name"))
        for field in fields:
            if field.pk and stored.get(field.pk) != field.name:
                CommentField.objects.filter(pk=field.pk).update(
                    name=f"renaming {field.pk} {secrets.token_hex(8)}"
                )
        for position, field in enumerate(fields):
            field.comment_type = comment_type
            field.position = position
            field.full_clean(exclude=["comment_type"], validate_constraints=False)
            field.save()
    return comment_type
