from drf_spectacular.authentication import BasicScheme
from rest_framework.authentication import BasicAuthentication
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
