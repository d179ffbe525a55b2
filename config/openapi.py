"""The API schema says every answer an operation gives, errors included, for all apps at once.

`ApiAutoSchema` (DEFAULT_SCHEMA_CLASS) adds to each operation the error answers its view
can give: 400 (bad body or query), 401 and 403 (authentication, permission), 404 (a path
with an id), 413 and 415 (bodies). A view's own `@extend_schema(responses=...)` wins.
Every error is `{"code", "detail"}` (config.exceptions), and for a body or query refused field
by field also `fields`: each field's name with its list of messages.
"""

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorSerializer(serializers.Serializer):
    """Every refusal of the API: a stable `code` for programs, a sentence for people."""

    code = serializers.CharField(help_text="e.g. not_found, not_authenticated, permission_denied, throttled")
    detail = serializers.CharField()


class ValidationErrorSerializer(ErrorSerializer):
    """`parse_error` for a body that is no JSON; `invalid` with each refused field's messages."""

    fields = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text="each refused field's name with its messages (`non_field_errors` for the whole)",
    )


def error(description: str, serializer=ErrorSerializer) -> OpenApiResponse:
    return OpenApiResponse(response=serializer, description=description)


BAD_REQUEST = error(
    "The body or a query parameter was refused; each message says why.", ValidationErrorSerializer
)
NOT_AUTHENTICATED = error("No credentials, or wrong ones.")
FORBIDDEN = error("Signed in, but not a user of an active company.")
NOT_FOUND = error("No such object in your company.")
TOO_LARGE = error("The body is larger than the server takes.")
UNSUPPORTED_MEDIA_TYPE = error("The body is not `application/json`.")

BODY_METHODS = {"POST", "PUT", "PATCH"}


class ApiAutoSchema(AutoSchema):
    def get_auth(self):
        auths = super().get_auth()
        # AllowAny adds "or anonymous"; not so where the authentication's schema extension says
        # `refuses_anonymous = True` (it raises 401 itself for a request without credentials).
        if any(
            getattr(OpenApiAuthenticationExtension.get_match(authenticator), "refuses_anonymous", False)
            for authenticator in self.view.get_authenticators()
        ):
            auths = [auth for auth in auths if auth]
        return auths

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        # drf-spectacular adds `oneOf: [the field's constraints, {maxLength: 0}]` to a blank-allowed
        # string; where the constraints take "" too, "" matches both and oneOf refuses it: the
        # field's own constraints alone say it.
        alternatives = schema.get("oneOf")
        if (
            alternatives
            and len(alternatives) == 2
            and alternatives[1] == {"type": "string", "maxLength": 0}
            and _string_schema_takes_empty(alternatives[0])
        ):
            schema.update(schema.pop("oneOf")[0])

    def _error_responses(self) -> dict[str, OpenApiResponse]:
        errors = {}
        has_body = self.method in BODY_METHODS
        if has_body or self._is_list_view():
            errors["400"] = BAD_REQUEST
        if self.view.get_authenticators():
            errors["401"] = NOT_AUTHENTICATED
        if not any(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            errors["403"] = FORBIDDEN
        if "{" in self.path:
            errors["404"] = NOT_FOUND
        if has_body:
            errors["413"] = TOO_LARGE
            errors["415"] = UNSUPPORTED_MEDIA_TYPE
        return errors


def _string_schema_takes_empty(schema: dict) -> bool:
    if schema.get("type") != "string" or "format" in schema or schema.get("minLength", 0) > 0:
        return False
    return "pattern" not in schema or re.search(schema["pattern"], "") is not None
