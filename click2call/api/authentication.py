"""The banner's credentials: a campaign key in `X-Campaign-Key`, no session and no CSRF (it is
called cross-site). The public key is in every page that shows the banner, so it is taken only
from the campaign's own sites (their Origin); the secret key is for the company's servers."""

import re

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException

from click2call.models import Campaign
from click2call.selectors import campaign_for_key

# Keys are URL-safe base64 with a prefix: anything else cannot match and is not looked up.
CAMPAIGN_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")


class BannerError(APIException):
    """A refusal with a stable code for the widget and for programs."""

    def __init__(self, code: str, detail: str, status_code: int = status.HTTP_400_BAD_REQUEST):
        self.status_code = status_code
        super().__init__(detail=detail, code=code)


def campaign_key_invalid():
    return BannerError(
        "campaign_key_invalid", "Unknown or inactive campaign, or a wrong key.", status.HTTP_403_FORBIDDEN
    )


def request_origin(request) -> str:
    return request.headers.get("Origin", "").strip().rstrip("/").lower()


def origin_allowed(campaign: Campaign, origin: str) -> bool:
    return bool(origin) and origin in {allowed.lower() for allowed in campaign.origins()}


class CampaignKeyAuthentication(BaseAuthentication):
    """`X-Campaign-Key`: the campaign's public key from one of its allowed origins, or its secret key."""

    def authenticate(self, request):
        if request.method == "OPTIONS":  # a CORS preflight carries no key; the view answers it
            return None
        key = request.headers.get("X-Campaign-Key", "").strip()
        if not CAMPAIGN_KEY.fullmatch(key):
            raise campaign_key_invalid()
        campaign = campaign_for_key(key=key)
        if campaign is None:
            raise campaign_key_invalid()
        if campaign.public_key == key:
            if not origin_allowed(campaign, request_origin(request)):
                raise BannerError(
                    "origin_not_allowed",
                    "This site may not use the campaign's banner (its Origin is not allowed).",
                    status.HTTP_403_FORBIDDEN,
                )
        elif not campaign.secret_key_matches(key):
            raise campaign_key_invalid()
        return (AnonymousUser(), campaign)


class CampaignKeyScheme(OpenApiAuthenticationExtension):
    target_class = CampaignKeyAuthentication
    name = "campaignKey"
    # The authentication refuses a request without a key (403 campaign_key_invalid).
    refuses_anonymous = True

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Campaign-Key",
            "description": (
                "The campaign's public key, accepted only from its allowed origins (the Origin header), "
                "or its secret key, for the company's own servers, from anywhere."
            ),
        }
