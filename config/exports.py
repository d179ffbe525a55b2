"""Spreadsheet exports that a hostile caller ID cannot turn into a formula.

Numbers, names and notes come from anybody (a caller ID is whatever the
caller's carrier sends). A spreadsheet runs a text cell starting with `=`,
`+`, `-` or `@` (and, in some, a tab or carriage return) as a formula, DDE
included (`=cmd|' /C calc'!A0`). Every export goes through here and gets
the OWASP escaping: such a text cell is prefixed with a single quote and
otherwise left as it was. Numbers, dates and booleans are never touched, so
a negative number stays a number.

Apps export with `ExportResource` (import-export resources) and, in the
admin, `ExportAdminMixin`; portal views answer with `export_response`.
"""

from numbers import Number

from django.http import HttpResponse
from import_export import resources
from import_export.admin import ExportMixin
from import_export.formats import base_formats
from import_export.formats.base_formats import BINARY_FORMATS

FORMULA_STARTERS = ("=", "+", "-", "@", "\t", "\r")

# The formats the escaping is meant for; JSON and the like would carry the quote as data.
SPREADSHEET_FORMATS = [base_formats.CSV, base_formats.TSV, base_formats.XLSX]


def escape_cell(value):
    """A text cell a spreadsheet would evaluate gets a leading single quote; anything else is as it was."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTERS):
        return "'" + value
    return value


def unescape_cell(value: str) -> str:
    """The inverse of escape_cell, for imports of what we exported: without it each export and import
    of a "-" or "+" text added one more quote, for good. A text that really starts with a quote and
    a formula starter loses that quote (the price of a round trip)."""
    if value.startswith("'") and value[1:].startswith(FORMULA_STARTERS):
        return value[1:]
    return value


class ExportResource(resources.ModelResource):
    """A ModelResource whose text fields are escaped on export.

    Decided on the model's value, not on the rendered cell: a CSV renders
    every number as text, and a numeric -5 must stay -5. A `dehydrate_*`
    column has no model value and is text, so it is escaped.
    """

    def export_field(self, field, instance, **kwargs):
        rendered = super().export_field(field, instance, **kwargs)
        if isinstance(field.get_value(instance), Number):
            return rendered
        return escape_cell(rendered)


class ExportAdminMixin(ExportMixin):
    """The admin's export button, limited to the formats the escaping is made for."""

    export_formats = SPREADSHEET_FORMATS

    # import-export lets any staff member export when IMPORT_EXPORT_EXPORT_PERMISSION_CODE is unset:
    # the rows a page would not show them are not theirs to download either.
    def has_export_permission(self, request):
        return self.has_view_permission(request) and super().has_export_permission(request)


def export_response(resource: ExportResource, queryset, *, filename: str, file_format=None) -> HttpResponse:
    """The queryset as a download (CSV unless told), through the resource's escaping. In a workbook
    (XLSX) numbers and dates are cells of their type, as the admin's export writes them, not text."""
    file_format = file_format or base_formats.CSV()
    native = type(file_format) in BINARY_FORMATS
    body = file_format.export_data(resource.export(queryset, force_native_type=native))
    response = HttpResponse(body, content_type=file_format.get_content_type())
    response["Content-Disposition"] = f'attachment; filename="{filename}.{file_format.get_extension()}"'
    return response
