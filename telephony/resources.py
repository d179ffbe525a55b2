from import_export import fields

from config.exports import ExportResource
from telephony.models import CALL_RECORD_PUBLIC_FIELDS, CallRecord


class CallRecordResource(ExportResource):
    company = fields.Field(attribute="company__name", column_name="company")

    class Meta:
        model = CallRecord
        # The company is named, not numbered, in a file a person reads.
        fields = ["company", *CALL_RECORD_PUBLIC_FIELDS]
        export_order = fields
