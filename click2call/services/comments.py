"""Comments on calls: each one of a company's comment types, its values checked against the type's fields."""

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

from click2call.models import CallComment, CallRequest, CommentField, CommentType
from config.validators import validate_plain_lines

MAX_TEXT = 2000
MAX_NUMBER = Decimal("1e12")


def comment_value_clean(*, field: CommentField, raw) -> str | None:
    """The value stored for one field, as text (numbers in plain decimal, dates in ISO), or None if empty.

    Everything is stored as a string so that the JSON keeps exactly what was typed, and the
    export shows it the same way."""
    text = "" if raw is None else str(raw).strip()
    if not text:
        if field.required:
            raise ValidationError({field.name: "This field is required."})
        return None
    if "\x00" in text:
        raise ValidationError({field.name: "Null characters are not allowed."})
    if field.kind == CommentField.Kind.NUMBER:
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValidationError({field.name: "Enter a number."}) from None
        if not text.isascii() or not number.is_finite() or abs(number) >= MAX_NUMBER:
            raise ValidationError({field.name: "Enter a number."})
        return format(number, "f")
    if field.kind == CommentField.Kind.DATE:
        try:
            # fromisoformat alone would also take "20261123" and non-ASCII digits.
            if not (text.isascii() and len(text) == 10):
                raise ValueError(text)
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValidationError({field.name: "Enter a date as YYYY-MM-DD."}) from None
    if field.kind == CommentField.Kind.CHOICE:
        if text not in field.choice_list():
            raise ValidationError({field.name: "Choose one of the choices."})
        return text
    if len(text) > MAX_TEXT:
        raise ValidationError({field.name: f"At most {MAX_TEXT} characters."})
    try:
        validate_plain_lines(text)
    except ValidationError as error:
        raise ValidationError({field.name: error.messages}) from None
    return text


def comment_values_clean(*, comment_type: CommentType, values: dict) -> dict:
    """Every field of the type checked; all the errors at once, keyed by field name."""
    cleaned, errors = {}, {}
    for field in comment_type.fields.all():
        try:
            value = comment_value_clean(field=field, raw=values.get(field.name))
        except ValidationError as error:
            errors.update(error.message_dict)
            continue
        if value is not None:
            cleaned[field.name] = value
    if errors:
        raise ValidationError(errors)
    return cleaned


def call_comment_add(*, request: CallRequest, comment_type: CommentType, values: dict, author) -> CallComment:
    """A comment on a call, of an active type of the call's own company, its values valid for the type."""
    if comment_type.company_id != request.company_id or not comment_type.active:
        raise ValidationError("Choose one of your active comment types.")
    cleaned = comment_values_clean(comment_type=comment_type, values=values)
    return CallComment.objects.create(
        request=request, comment_type=comment_type, values=cleaned, author=author
    )
