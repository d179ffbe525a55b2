"""Spreadsheets of click2call: rates in and out (carriers' tables of 10^4 to 10^5 prefixes), and the
call list with its comments out. Exports go through config.exports' formula escaping."""

import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from import_export import fields, widgets

from click2call.models import CallRequest, Rate, Tariff
from config.exports import ExportResource

PREFIX = re.compile(r"^[0-9]{1,15}$")
MAX_PRICE = Decimal("99999.99999")


class PriceWidget(widgets.DecimalWidget):
    """A price as carriers write it, "0.0123" or "0,0123"; negative, absurd or not a number: a row error."""

    def clean(self, value, row=None, **kwargs):
        text = str(value if value is not None else "").strip().replace(",", ".")
        try:
            price = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a price.") from None
        if not text.isascii() or not price.is_finite() or price < 0 or price > MAX_PRICE:
            raise ValueError(f"{value!r} is not a price from 0 to {MAX_PRICE}.")
        return price.quantize(Decimal("0.00001"))


class PrefixWidget(widgets.CharWidget):
    """Digits only: a leading + or 00 and spaces are what carriers add, and are dropped."""

    def clean(self, value, row=None, **kwargs):
        text = re.sub(r"[\s.]", "", str(value if value is not None else ""))
        if text.endswith(".0"):  # a spreadsheet's number cell
            text = text[:-2]
        text = text.removeprefix("+")
        if not PREFIX.match(text):
            raise ValueError(f"{value!r} is not a prefix (1 to 15 digits).")
        return text


class RateResource(ExportResource):
    """A tariff's rates: prefix, destination, price. Given a `tariff`, an import fills that tariff only
    (the file needs no tariff column) in bulk: the existing rates are read once, a prefix already there
    gets the new destination and price (a row that changes nothing is skipped), a prefix twice in the
    file is a row error, and any row error leaves the tariff as it was."""

    prefix = fields.Field(attribute="prefix", column_name="prefix", widget=PrefixWidget())
    destination = fields.Field(attribute="destination", column_name="destination")
    price = fields.Field(attribute="price", column_name="price", widget=PriceWidget())

    class Meta:
        model = Rate
        fields = ["prefix", "destination", "price"]
        export_order = fields
        import_id_fields = ["prefix"]
        use_bulk = True
        batch_size = 2000
        skip_diff = True
        # Row results of 10^5 rows are kept only for those in error.
        report_skipped = False
        use_transactions = True

    def __init__(self, *, tariff: Tariff | None = None, **kwargs):
        super().__init__(**kwargs)
        self.tariff = tariff

    def get_queryset(self):
        queryset = super().get_queryset().select_related("tariff")
        return queryset.filter(tariff=self.tariff) if self.tariff else queryset

    def before_import(self, dataset, **kwargs):
        if self.tariff is None:
            raise ValidationError("Choose the tariff the rates are for.")
        missing = {"prefix", "destination", "price"} - {
            header.strip().lower() for header in dataset.headers or []
        }
        if missing:
            raise ValidationError(
                f"Columns prefix, destination, price needed; missing: {', '.join(sorted(missing))}."
            )
        dataset.headers = [header.strip().lower() for header in dataset.headers]
        self._existing = {rate.prefix: rate for rate in Rate.objects.filter(tariff=self.tariff)}
        # What each rate was before the file, so a row that changes nothing is not written again.
        self._stored = {prefix: (rate.destination, rate.price) for prefix, rate in self._existing.items()}
        self._seen = set()

    def get_instance(self, instance_loader, row):
        prefix = PrefixWidget().clean(row.get("prefix"))
        return self._existing.get(prefix)

    def init_instance(self, row=None):
        return Rate(tariff=self.tariff)

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        # Field checks only: a per-row unique check would be one query per row; duplicates are
        # caught here against the file and against the tariff by _existing.
        errors = dict(import_validation_errors or {})
        if instance.prefix in self._seen:
            errors.setdefault("prefix", []).append(f"{instance.prefix} is twice in the file.")
        destination = instance.destination or ""
        if not destination.strip() or len(destination) > 120 or "\x00" in destination:
            errors.setdefault("destination", []).append("A destination name of 1 to 120 characters.")
        if errors:
            raise ValidationError(errors)
        self._seen.add(instance.prefix)

    def import_instance(self, instance, row, **kwargs):
        # The three columns through their widgets, errors reported as import-export does, without
        # its generic walk over fields (a third of the time of 10^5 rows).
        errors = {}
        for field in self.fields.values():
            try:
                setattr(instance, field.attribute, field.clean(row))
            except ValueError as exc:
                errors[field.attribute] = ValidationError(str(exc), code="invalid")
        if errors:
            raise ValidationError(errors)

    def skip_row(self, instance, original, row, import_validation_errors=None):
        # A carrier's new table changes few of its prefixes: the others are left as they are,
        # but still count for the check of a prefix twice in the file.
        unchanged = self._stored.get(instance.prefix) == (instance.destination, instance.price)
        if import_validation_errors or not unchanged or instance.prefix in self._seen:
            return False
        self._seen.add(instance.prefix)
        return True

    def bulk_update(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        # Django's bulk_update writes a CASE per column over the whole batch, which took minutes
        # for 10^5 rows; deleting the changed rates and inserting them again, ids kept, is two
        # statements a batch, inside the import's one transaction (all or nothing).
        if self.update_instances and (using_transactions or not dry_run):
            try:
                Rate.objects.filter(pk__in=[rate.pk for rate in self.update_instances]).delete()
                Rate.objects.bulk_create(self.update_instances, batch_size=batch_size)
            except Exception as exc:
                self.handle_import_error(result, exc, raise_errors)
            finally:
                self.update_instances.clear()


class CallRequestResource(ExportResource):
    """The call list for a person's spreadsheet, with a column per comment field ("Type: field"): a
    call's comments of one type are joined with " | " in their order."""

    campaign = fields.Field(attribute="campaign__name", column_name="campaign")
    status = fields.Field(attribute="get_status_display", column_name="status")

    class Meta:
        model = CallRequest
        fields = [
            "id",
            "created_at",
            "campaign",
            "number",
            "name",
            "note",
            "status",
            "destination",
            "country",
            "region",
            "carrier",
            "rate_price",
            "tries",
            "finished_at",
        ]
        export_order = fields

    def __init__(self, *, comment_columns: list[tuple[str, str]] = (), **kwargs):
        super().__init__(**kwargs)
        for type_name, field_name in comment_columns:
            column = f"{type_name}: {field_name}"
            self.fields[column] = fields.Field(
                column_name=column, dehydrate_method=self._comment_value(type_name, field_name)
            )

    @staticmethod
    def _comment_value(type_name, field_name):
        def value(request):
            return " | ".join(
                comment.values[field_name]
                for comment in request.comments.all()
                if comment.comment_type.name == type_name and comment.values.get(field_name)
            )

        return value

    def get_export_fields(self, selected_fields=None):
        return list(self.fields.values())
