"""The banner's widget: one self-contained script per campaign, its public key and the API's
address baked in (`<script src="https://HOST/c2c/<public key>/widget.js">`), and a demo page."""

import json

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseNotFound
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.management.commands.demo_data import DEMO_COMPANY
from click2call.models import Campaign

# Short enough that a key rotated or a campaign stopped reaches the sites within minutes.
WIDGET_MAX_AGE = 300
# A JSON object inside a script: no character of it may end the script or open markup.
JS_ESCAPES = {
    ord("<"): "\\u003C",
    ord(">"): "\\u003E",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def active_campaigns():
    return Campaign.objects.filter(active=True, company__active=True)


@require_GET
def widget_js(request, public_key):
    campaign = active_campaigns().filter(public_key=public_key).only("public_key").first()
    if campaign is None:
        return HttpResponseNotFound(
            "/* Unknown or inactive click2call campaign. */\n", content_type="text/javascript; charset=utf-8"
        )
    config = {
        "api": request.build_absolute_uri(reverse("click2call-api:request-create")),
        "key": campaign.public_key,
    }
    script = render_to_string(
        "click2call/widget.js", {"config_json": json.dumps(config).translate(JS_ESCAPES)}
    )
    response = HttpResponse(script, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={WIDGET_MAX_AGE}"
    response["X-Content-Type-Options"] = "nosniff"
    # The widget runs on other sites: it may be loaded from them (and by them only as a script).
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@require_GET
def demo(request):
    """The demo company's first active campaign on a page of its own; only with DEBUG on."""
    campaign = (
        active_campaigns().filter(company__slug=DEMO_COMPANY["slug"]).select_related("company").first()
        if settings.DEBUG
        else None
    )
    if campaign is None:
        raise Http404("No demo campaign.")
    widget_url = reverse("click2call-widget:widget", args=[campaign.public_key])
    return render(request, "click2call/demo.html", {"campaign": campaign, "widget_url": widget_url})
