from rest_framework import serializers

from accounts.models import Company


class CompanySerializer(serializers.ModelSerializer):
    class Meta:
        model = Company
        fields = ["name", "slug", "time_zone", "currency", "billing_email", "webhook_url", "active"]
