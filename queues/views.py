"""The company portal's queue pages: an agent's own page (status buttons, the caller offered, today's
counters, the last answered calls and their dispositions), the supervisor's live wallboard, the
reports with their CSV, the event log.

Who is who: a company user linked to an Agent (Agent.user) is that agent, and opens only its own
agent page; any other user of the company is a supervisor and opens every agent's page. Every page
reads the database only (queues.reports); status changes go through agent_status_set, dispositions
through offer_disposition_set."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.portal import company_view
from accounts.templatetags.portal import clock
from config import words
from config.exports import export_response
from queues import forms, reports
from queues.models import Agent, Offer
from queues.services.agents import agent_status_set
from queues.services.dispositions import DispositionRefused, offer_disposition_set

PAGE_SIZE = 50
# The statuses an agent picks on its page (logging out is a button of its own).
AGENT_CHOICES = (Agent.Status.AVAILABLE, Agent.Status.AVAILABLE_ON_DEMAND, Agent.Status.ON_BREAK)


def _own_agent(request) -> Agent | None:
    return Agent.objects.filter(company=request.company, user=request.user).first()


def _agent_for(request, pk) -> Agent:
    """The company's agent `pk` (404 otherwise), if the user may open it: its own user or a supervisor."""
    agent = get_object_or_404(Agent.objects.select_related("company", "user"), company=request.company, pk=pk)
    if agent.user_id != request.user.pk and _own_agent(request) is not None:
        raise PermissionDenied("An agent opens only its own page.")
    return agent


# Agents


@company_view
@require_GET
def agent_list(request):
    """An agent goes straight to its page; a supervisor picks one."""
    own = _own_agent(request)
    if own is not None:
        return redirect("queues:agent", company_slug=request.company.slug, pk=own.pk)
    agents = Agent.objects.filter(company=request.company).select_related("user")
    return render(request, "queues/agent_list.html", {"agents": agents})


def _agent_page(request, agent: Agent, *, refused: tuple[int, forms.DispositionForm] | None = None):
    counters, current = reports.agent_page(agent=agent)
    last_calls = reports.agent_last_calls(agent=agent)
    refused_elsewhere = []
    for offer in last_calls:
        # The call whose disposition was just refused shows what was typed and why, in its form.
        shown = refused and refused[0] == offer.pk and offer.ended_at is not None
        offer.disposition_form = refused[1] if shown else None
    if refused and all(offer.disposition_form is None for offer in last_calls):
        # A call with no form (still on, never answered, older): the reason shows above the list.
        refused_elsewhere = [error for errors in refused[1].errors.values() for error in errors]
    return render(
        request,
        "queues/agent_detail.html",
        {
            "agent": agent,
            "counters": counters,
            "current": current,
            "last_calls": last_calls,
            "dispositions": reports.disposition_suggestions(company=agent.company) if last_calls else [],
            "refused_elsewhere": refused_elsewhere,
            "statuses": [
                *((status, words.AGENT_STATUS[status]) for status in AGENT_CHOICES),
                (Agent.Status.LOGGED_OUT, "Log out of the queues"),
            ],
        },
        status=400 if refused else 200,
    )


@company_view
@never_cache
@require_GET
def agent_detail(request, pk):
    return _agent_page(request, _agent_for(request, pk))


@company_view
@require_POST
def agent_status(request, pk):
    agent = _agent_for(request, pk)
    form = forms.AgentStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the statuses offered.")
        return redirect("queues:agent", company_slug=request.company.slug, pk=agent.pk)
    agent = agent_status_set(agent_id=agent.pk, status=form.cleaned_data["status"])
    messages.success(request, f"{agent.name} is now {words.say(words.AGENT_STATUS, agent.status).lower()}.")
    return redirect("queues:agent", company_slug=request.company.slug, pk=agent.pk)


@company_view
@require_POST
def agent_disposition(request, pk, offer_pk):
    """The disposition of one of the agent's answered calls, after the call; a refusal is the agent's
    page again (400) with the reason next to that call."""
    agent = _agent_for(request, pk)
    offer = get_object_or_404(Offer, pk=offer_pk, agent=agent)
    form = forms.DispositionForm(request.POST)
    if form.is_valid():
        try:
            offer = offer_disposition_set(
                offer=offer, disposition=form.cleaned_data["disposition"], user=request.user
            )
        except ValidationError as exc:
            form.add_error("disposition", exc)
        except DispositionRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                f"Disposition {offer.disposition} recorded for {offer.member.cid_number or 'the call'}.",
            )
            return redirect("queues:agent", company_slug=request.company.slug, pk=agent.pk)
    return _agent_page(request, agent, refused=(offer.pk, form))


# The wallboard


@company_view
@never_cache
@require_GET
def wallboard(request):
    boards = reports.wallboard(company=request.company)
    return render(request, "queues/wallboard.html", {"boards": boards, "now": timezone.now()})


def _in_words(board: dict) -> dict:
    """A board's JSON with the words the page shows beside the codes the script matches on."""
    for caller in board["waiting"]:
        caller["state_text"] = words.say(words.MEMBER_STATE, caller["state"])
    for line in board["agents"]:
        line["status_text"] = words.say(words.AGENT_STATUS, line["status"])
        line["state_text"] = words.say(words.AGENT_STATE, line["state"])
        line["tier_state_text"] = words.say(words.TIER_STATE, line["tier_state"])
    return board


@company_view
@never_cache
@require_GET
def wallboard_data(request):
    """What the wallboard's script polls every second."""
    boards = [_in_words(board.as_json()) for board in reports.wallboard(company=request.company)]
    # The board's clock, read off the server in the company's zone: the browser's own zone and
    # 12-hour form would disagree with every other time in the portal.
    return JsonResponse({"queues": boards, "at": clock(timezone.localtime())})


# Reports


def _report(request, *, template, figures_of, resource, name):
    # Bound even when empty: no dates is today.
    form = forms.PeriodForm(request.GET, today=reports.today(request.company))
    if not form.is_valid():
        return render(request, template, {"form": form, "rows": []}, status=400)
    period = form.cleaned_data
    rows = figures_of(company=request.company, start=period["start"], end=period["end"])
    if request.GET.get("format") == "csv":
        return export_response(
            resource(),
            rows,
            filename=f"queues-{name}-{request.company.slug}-{period['start']:%Y%m%d}-{period['end']:%Y%m%d}",
        )
    return render(
        request, template, {"form": form, "rows": rows, "start": period["start"], "end": period["end"]}
    )


@company_view
@require_GET
def queue_report(request):
    return _report(
        request,
        template="queues/queue_report.html",
        figures_of=reports.queue_report,
        resource=reports.QueueReportResource,
        name="queues",
    )


@company_view
@require_GET
def agent_report(request):
    return _report(
        request,
        template="queues/agent_report.html",
        figures_of=reports.agent_report,
        resource=reports.AgentReportResource,
        name="agents",
    )


# Events


@company_view
@require_GET
def event_list(request):
    form = forms.EventFilterForm(request.GET, company=request.company)
    form.fields["action"].choices = [("", "all"), *words.QUEUE_EVENT.items()]
    if not form.is_valid():
        return render(request, "queues/event_list.html", {"form": form, "page": []}, status=400)
    filters = {name: value for name, value in form.cleaned_data.items() if value}
    events = reports.queue_events(company=request.company, **filters)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "queues/event_list.html", {"form": form, "page": page})
