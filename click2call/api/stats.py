"""The company API's click2call statistics: the portal's figures over a period as JSON, for the
company's own integrations (its users' credentials or API tokens, never the banner's key).

Dates are days in the company's time zone, both included; a bad date, a period that ends before it
starts or is longer than config.periods.MAX_PERIOD_DAYS, and a campaign that is not the company's
are refused with the API's 400 (`{"code": "invalid", "detail", "fields"}`).
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from click2call import stats
from click2call.models import Campaign
from config.filters import ListFilterSerializer
from config.openapi import BAD_REQUEST
from config.periods import today


class C2CStatsQuerySerializer(ListFilterSerializer):
    # "from" is a Python keyword: declared through the class body's namespace.
    locals()["from"] = serializers.DateField(
        required=False, help_text="first day, in the company's time zone (default: `to`)"
    )
    to = serializers.DateField(required=False, help_text="last day, included (default: today)")
    campaign = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="one of the company's campaigns (default: all)",
    )

    def validate_campaign(self, value):
        campaign = Campaign.objects.filter(company=self.context["company"], pk=value).first()
        if campaign is None:
            raise serializers.ValidationError("No such campaign in your company.")
        return campaign

    def validate(self, data):
        end = data.get("to") or today(self.context["company"])
        start = data.get("from") or end
        problem = stats.period_problem(start, end)
        if problem:
            raise serializers.ValidationError({"to": [problem]})
        return {"start": start, "end": end, "campaign": data.get("campaign")}


class C2CLegsSerializer(serializers.Serializer):
    legs = serializers.IntegerField(help_text="legs rung")
    answered = serializers.IntegerField()
    answer_rate = serializers.FloatField(allow_null=True, help_text="percent of the legs answered")
    average_time_to_answer = serializers.FloatField(allow_null=True, help_text="seconds of ringing")
    talk_seconds = serializers.IntegerField()
    average_talk = serializers.FloatField(allow_null=True, help_text="seconds")
    longest_talk = serializers.IntegerField(help_text="seconds")


class C2CBothLegsSerializer(serializers.Serializer):
    visitor = C2CLegsSerializer()
    company = C2CLegsSerializer()


class C2CPeriodSerializer(serializers.Serializer):
    locals()["from"] = serializers.DateField()
    to = serializers.DateField()
    requests = serializers.IntegerField(help_text="requests made in the period")
    completed = serializers.IntegerField()
    failed_user = serializers.IntegerField(help_text="FAILED CALLING TO USER")
    failed_company = serializers.IntegerField(help_text="FAILED CALLING TO COMPANY")
    open = serializers.IntegerField(help_text="still pending or dialing")
    completion_rate = serializers.FloatField(allow_null=True, help_text="percent completed")
    legs = C2CBothLegsSerializer()


class C2CDeltaSerializer(serializers.Serializer):
    key = serializers.CharField()
    this = serializers.FloatField(allow_null=True)
    other = serializers.FloatField(allow_null=True, help_text="the previous period's")
    absolute = serializers.FloatField(allow_null=True)
    relative = serializers.FloatField(allow_null=True, help_text="percent; null from 0")


class C2CCountsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed_user = serializers.IntegerField()
    failed_company = serializers.IntegerField()
    open = serializers.IntegerField()


class C2CPointSerializer(C2CCountsSerializer):
    at = serializers.CharField(help_text="the day, or the hour (wall clock) for a one-day period")


class C2CDirectionSerializer(C2CCountsSerializer):
    country = serializers.CharField()
    carrier = serializers.CharField(help_text="the mobile operator")


class C2CCampaignCountsSerializer(C2CCountsSerializer):
    campaign = serializers.IntegerField()
    name = serializers.CharField()


class C2CLiveSerializer(serializers.Serializer):
    in_progress = serializers.IntegerField(help_text="requests being dialed now")
    retries_waiting = serializers.IntegerField(help_text="pending, their next automatic try scheduled")
    failed_waiting = serializers.IntegerField(help_text="failed, waiting for the company's call back")
    next_retry_at = serializers.DateTimeField(allow_null=True)
    oldest_failed_at = serializers.DateTimeField(allow_null=True)


class C2CStatsSerializer(serializers.Serializer):
    campaign = serializers.IntegerField(allow_null=True)
    time_zone = serializers.CharField()
    period = C2CPeriodSerializer()
    previous = C2CPeriodSerializer(
        help_text="the period of as many days just before; for one under way, as many days as have begun"
    )
    deltas = C2CDeltaSerializer(many=True)
    series = C2CPointSerializer(many=True, help_text="per day, or per hour for one day")
    directions = C2CDirectionSerializer(many=True, help_text="the most requested countries and operators")
    campaigns = C2CCampaignCountsSerializer(many=True)
    live = C2CLiveSerializer()


def _counts(row) -> dict:
    return {key: getattr(row, key) for key in stats.STATUS_COUNTS}


class CallStats(APIView):
    """The company's click2call figures over a period: requests by outcome, each party's legs
    (answer rate, time to answer, talk time), compared with the period before; per day (hour),
    direction and campaign; and what is under way now."""

    @extend_schema(
        parameters=[C2CStatsQuerySerializer], responses={200: C2CStatsSerializer, 400: BAD_REQUEST}
    )
    def get(self, request):
        company = request.user.company
        query = C2CStatsQuerySerializer(data=request.query_params, context={"company": company})
        query.is_valid(raise_exception=True)
        start, end, campaign = (query.validated_data[key] for key in ("start", "end", "campaign"))
        points = stats.series(company=company, start=start, end=end, campaign=campaign)
        figures = stats.period_figures(
            company=company, start=start, end=end, campaign=campaign, points=points
        )
        before = stats.previous_period(start, end, today=today(company))
        previous = stats.period_figures(company=company, start=before[0], end=before[1], campaign=campaign)
        body = {
            "campaign": campaign and campaign.pk,
            "time_zone": company.time_zone,
            "period": figures.as_dict(),
            "previous": previous.as_dict(),
            "deltas": [delta.as_dict() for delta in stats.comparison(figures, previous)],
            "series": [{"at": point.at.isoformat(), **_counts(point)} for point in points],
            "directions": [
                {"country": row.country, "carrier": row.carrier, **_counts(row)}
                for row in stats.directions(company=company, start=start, end=end, campaign=campaign)
            ],
            "campaigns": [
                {"campaign": row.campaign_id, "name": row.name, **_counts(row)}
                for row in stats.campaigns(company=company, start=start, end=end)
                if campaign is None or row.campaign_id == campaign.pk
            ],
            "live": stats.live(company=company, campaign=campaign).as_dict(),
        }
        return Response(C2CStatsSerializer(body).data)
