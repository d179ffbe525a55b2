from import_export import fields

from config.exports import ExportResource
from telephony.models import CallRecord


class CallRecordResource(ExportResource):
    company = fields.Field(attribute="company__name", column_name="company")

    class Meta:
        model = CallRecord
        fields = [
            "uniqueid",
            "linkedid",
            "company",
            "app",
            "app_ref",
            "caller",
            "callee",
            "direction",
            "started_at",
            "answered_at",
            "ended_at",
            "duration",
            "billsec",
            "disposition",
            "hangup_cause",
            "hangup_cause_text",
        ]
        export_order = fields
