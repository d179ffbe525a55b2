"""The portal's click2call statistics: a period's figures, charts and directions, compared with
another period, as a page or a CSV; and the live counts its script polls. Thin: click2call.stats reads."""

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.portal import company_view
from click2call import charts, forms, stats
from config.exports import export_response
from config.periods import today


def _form(request):
    return forms.StatsForm(request.GET, company=request.company, today=today(request.company))


@company_view
@require_GET
def stats_page(request):
    company = request.company
    form = _form(request)
    context = {"form": form}
    if not form.is_valid():
        context["live"] = stats.live(company=company)
        return render(request, "click2call/stats.html", context, status=400)
    data = form.cleaned_data
    (start, end), campaign = data["period"], data["campaign"]
    period = {"company": company, "start": start, "end": end}
    points = stats.series(**period, campaign=campaign)
    figures = stats.period_figures(**period, campaign=campaign, points=points)
    compared = deltas = None
    if data["compared"]:
        compared = stats.period_figures(
            company=company, start=data["compared"][0], end=data["compared"][1], campaign=campaign
        )
        deltas = stats.comparison(figures, compared)
    directions = stats.directions(**period, campaign=campaign)
    campaigns = stats.campaigns(**period) if campaign is None else []
    if request.GET.get("format") == "csv":
        rows = stats.stats_rows(
            figures=figures, deltas=deltas, points=points, directions=directions, campaigns=campaigns
        )
        name = f"c2c-stats-{company.slug}-{start:%Y%m%d}-{end:%Y%m%d}"
        return export_response(stats.StatsResource(), rows, filename=name)
    context |= {
        "figures": figures,
        "compared": compared,
        "deltas": deltas,
        "chart": charts.series_chart(points),
        "hourly": start == end,
        "legs": [
            ("The visitor's legs", figures.visitor, charts.leg_bars(figures.visitor)),
            ("The company's legs", figures.company, charts.leg_bars(figures.company)),
        ],
        "directions": directions,
        "campaigns": campaigns,
        "campaign": campaign,
        "live": stats.live(company=company, campaign=campaign),
        "now": timezone.now(),
    }
    return render(request, "click2call/stats.html", context)


@company_view
@never_cache
@require_GET
def stats_live(request):
    """The live counts alone, what the page's script fetches every few seconds."""
    form = _form(request)
    campaign = form.cleaned_data.get("campaign") if form.is_valid() else None
    live = stats.live(company=request.company, campaign=campaign)
    return render(request, "click2call/_stats_live.html", {"live": live, "now": timezone.now()})
