"""One error body for the whole API: `{"code": ..., "detail": ...}`, whatever refused the request.

`code` is stable and meant for programs (`not_found`, `not_authenticated`, `authentication_failed`,
`permission_denied`, `method_not_allowed`, `not_acceptable`, `unsupported_media_type`,
`request_too_large`, `throttled`, `parse_error`, `invalid`, or a view's own such as `agent_busy`);
`detail` is one sentence for people. A body or query refused field by field (`invalid`) adds
`fields`: each field's name with its messages, as DRF gives them. DRF's status and headers
(WWW-Authenticate, Allow, Retry-After) are kept.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions

NOT_FOUND = {"code": "not_found", "detail": "Not found."}


def api_exception_handler(exc, context):
    """DEFAULT: DRF's answer with its body in the API's one shape."""
    # Imported here: this module is the middleware's, which Django's system checks import in every
    # `manage.py` command and Celery worker, and rest_framework.views brings about 20 MiB with it.
    from rest_framework.views import exception_handler

    # Django's Http404 carries get_object_or_404's "No CallRecord matches the given query.":
    # a model's name is no business of a client's.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    response.data = error_body(exc.detail)
    return response


def error_body(detail) -> dict:
    if isinstance(detail, list | dict):
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        return {"code": "invalid", "detail": _first_message(fields), "fields": fields}
    return {"code": detail.code, "detail": str(detail)}


def _first_message(errors) -> str:
    """The first message of a (possibly nested) set of field errors, for `detail`."""
    while isinstance(errors, list | dict):
        values = list(errors.values()) if isinstance(errors, dict) else errors
        if not values:
            return "Invalid input."
        errors = values[0]
    return str(errors)


def api_not_found_response() -> JsonResponse:
    return JsonResponse(NOT_FOUND, status=404)


# What Django itself may answer before or around a view, with the API's code for it.
_DJANGO_ERRORS = {
    400: ("bad_request", "Bad request."),  # a Host header not allowed, a malformed request
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    413: ("request_too_large", "The request body is too large."),
}


class ApiErrorMiddleware:
    """An error under /api/ that no API view answered (a path no URL matches, such as an id that is not
    a number; a Host not allowed) is the API's JSON body, with DEBUG on too, where Django would answer
    its HTML page. Server errors keep Django's own answer (its debug page, or the logged 500).

    Listed before CommonMiddleware, so the slash it appends by redirect still comes first.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        known = _DJANGO_ERRORS.get(response.status_code)
        if (
            known
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            code, detail = known
            answer = JsonResponse({"code": code, "detail": detail}, status=response.status_code)
            if response.has_header("Allow"):
                answer["Allow"] = response["Allow"]
            return answer
        return response
