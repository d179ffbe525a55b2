import re

from drf_spectacular.authentication import BasicScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, BasicAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled

from accounts import services


class ThrottledBasicAuthentication(BasicAuthentication):
    """HTTP Basic through the login throttle: a locked account or address gets 429 and Retry-After."""

    def authenticate_credentials(self, userid, password, request=None):
        try:
            user = services.login_authenticate(request=request, username=userid, password=password)
        except services.LoginThrottled as exc:
            raise Throttled(wait=exc.retry_after, detail=str(exc)) from None
        if user is None or not user.is_active:
            raise AuthenticationFailed("Invalid username/password.")
        return user, None


class ThrottledBasicScheme(BasicScheme):
    """Publishes the subclass as basicAuth in the OpenAPI schema, as drf-spectacular does for its parent."""

    target_class = ThrottledBasicAuthentication


# What api_token_create makes: the prefix, then 32 random bytes in URL-safe base64. Anything else (a NUL
# byte PostgreSQL refuses, 10 kB of junk) is no key at all, refused before any query.
API_TOKEN_KEY = re.compile(rb"cct_[A-Za-z0-9_-]{43}")


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>` of a user's active API token: the request acts as that user.

    Bearer, not DRF's `Token`: the telephony push endpoint already takes `Token <push key>`, a company's
    key, not a user's; a key sent with the wrong word is refused, never tried as the other kind.
    """

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2 or not API_TOKEN_KEY.fullmatch(parts[1]):
            raise AuthenticationFailed("Malformed header: send 'Authorization: Bearer <API token>'.")
        token = services.api_token_authenticate(key=parts[1].decode())
        if token is None:
            raise AuthenticationFailed("Unknown or revoked API token.")
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A user's API token, made in the portal (API tokens): `Authorization: Bearer cct_...`."
            ),
        }
