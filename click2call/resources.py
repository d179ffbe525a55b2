"""Spreadsheets of click2call: rates in and out (carriers' tables of 10^4 to 10^5 prefixes), and the
call list with its comments out. Exports go through config.exports' formula escaping."""

import csv
import dataclasses
import datetime as dt
import io
import re
import unicodedata
import zipfile
from decimal import Decimal, InvalidOperation

import openpyxl
from django.core.exceptions import ValidationError
from import_export import fields

from click2call.models import CallRequest, Rate, Tariff
from config.exports import ExportResource, unescape_cell
from config.validators import validate_plain_text

PREFIX = re.compile(r"^[0-9]{1,15}$")
MAX_PRICE = Decimal("99999.99999")
MAX_DESTINATION = Rate._meta.get_field("destination").max_length
RATE_COLUMNS = ("prefix", "destination", "price")
# The largest table read: carriers' tables hold 10^4 to 10^5 prefixes, and an XLSX of a few MB can
# unzip to tens of millions of rows, more than a worker's memory holds once checked.
MAX_RATES = 500_000


class UnreadableFile(ValueError):
    """The file is not a table this import reads; the message says so to a person."""


def _shown(value) -> str:
    """A cell as a person may see it in a message: short, invisible characters made visible."""
    text = "".join("?" if unicodedata.category(c)[0] == "C" else c for c in str(value))
    return f"“{text[:30]}…”" if len(text) > 30 else f"“{text}”"


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def price_of(value) -> Decimal:
    """A price per minute as carriers write it (0.0123, "0,0123", a number cell), to 5 decimals."""
    if _blank(value):
        raise ValueError("empty: the price per minute is needed.")
    if isinstance(value, dt.date | dt.time | dt.timedelta):
        raise ValueError("a date or a time, not a price (is the column a price column?).")
    if isinstance(value, bool):
        raise ValueError(f"{_shown(value)} is not a price.")
    text = str(value).strip().replace(",", ".") if isinstance(value, str) else str(value)
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{_shown(value)} is not a price (a number such as 0.0123).") from None
    if not text.isascii() or not price.is_finite() or price < 0 or price > MAX_PRICE:
        raise ValueError(f"{_shown(value)} is not a price from 0 to {MAX_PRICE}.")
    return price.quantize(Decimal("0.00001"))


def prefix_of(value) -> str:
    """Digits only: spaces and a leading + are what carriers add, and are dropped."""
    if _blank(value):
        raise ValueError("empty: the prefix is needed.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a spreadsheet's number cell
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{_shown(value)} is not a prefix (1 to 15 digits).")
    text = re.sub(r"\s", "", str(value)).removeprefix("+")
    if re.fullmatch(r"[0-9]+\.0+", text):  # a number cell written out by a spreadsheet
        text = text.partition(".")[0]
    if not PREFIX.match(text):
        raise ValueError(f"{_shown(value)} is not a prefix (1 to 15 digits).")
    return text


def destination_of(value) -> str:
    """A destination's name, as exported (the formula guard's quote taken off again), visible text only."""
    if _blank(value):
        raise ValueError("empty: a destination name is needed.")
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"{_shown(value)} is not a destination name.")
    text = unescape_cell(str(value)).strip()
    if len(text) > MAX_DESTINATION:
        raise ValueError(f"longer than {MAX_DESTINATION} characters.")
    try:
        validate_plain_text(text)  # the model's own rule: a bulk import never runs full_clean
    except ValidationError as error:
        raise ValueError(" ".join(error.messages)) from None
    return text


@dataclasses.dataclass(frozen=True, slots=True)
class RateRow:
    prefix: str
    destination: str
    price: Decimal


@dataclasses.dataclass
class RateTable:
    """A carrier's table, checked: its rates, or what is wrong with it, in the file's row order."""

    rates: list[RateRow] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    problem_count: int = 0  # all of them, when problems holds the first ones only


def _rows_of_xlsx(content: bytes):
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        sheet = book.worksheets[0]
    except Exception:  # openpyxl raises many kinds on a file that only looks like a workbook
        raise UnreadableFile("This file cannot be read as an XLSX workbook.") from None
    try:
        yield from enumerate(sheet.iter_rows(values_only=True), start=sheet.min_row or 1)
    except Exception:
        raise UnreadableFile("This file cannot be read as an XLSX workbook.") from None
    finally:
        book.close()


def _rows_of_csv(content: bytes):
    if b"\x00" in content:
        raise UnreadableFile("This is not a CSV file (it holds binary data): send a CSV or an XLSX.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableFile(
            "This file cannot be read as CSV in UTF-8: save it as CSV UTF-8 or XLSX."
        ) from None
    first_line = text.partition("\n")[0]
    # A spreadsheet set to a European language separates its CSV cells with ";".
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    try:
        # Numbered as a spreadsheet numbers them: a blank line is a row too.
        yield from enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1)
    except csv.Error as exc:
        raise UnreadableFile(f"This file cannot be read as CSV: {exc}.") from None


def rate_file_check(content: bytes, *, file_name: str) -> None:
    """What can be told of a file without reading its rows (at upload, in milliseconds): an XLSX that
    is no workbook, a CSV that is binary or not UTF-8. Raises UnreadableFile."""
    if file_name.lower().endswith(".xlsx"):
        if not zipfile.is_zipfile(io.BytesIO(content)):
            raise UnreadableFile("This file is not an XLSX workbook.")
        return
    next(_rows_of_csv(content), None)


def rate_table(content: bytes, *, file_name: str, max_problems: int = 50) -> RateTable:
    """The rates of a carrier's CSV or XLSX file (columns prefix, destination, price in any order,
    other columns ignored), every row checked; problems name the spreadsheet's row and column, in
    row order, the first `max_problems` of them. Raises UnreadableFile for a file that is no table."""
    table = RateTable()
    rate_file_check(content, file_name=file_name)
    is_xlsx = file_name.lower().endswith(".xlsx")
    rows = _rows_of_xlsx(content) if is_xlsx else _rows_of_csv(content)
    columns = None
    seen = {}
    count = 0
    for number, cells in rows:
        if all(_blank(cell) for cell in cells):
            continue
        if columns is not None:
            count += 1
            if count > MAX_RATES:
                raise UnreadableFile(
                    f"The file has more than {MAX_RATES:,} rates (row {number}): "
                    "split it into several files, imported one after the other."
                )
        if columns is None:
            headers = [str(cell).strip().lower() if cell is not None else "" for cell in cells]
            missing = [name for name in RATE_COLUMNS if name not in headers]
            if missing:
                raise UnreadableFile(
                    f"Row {number} must name the columns prefix, destination and price; "
                    f"missing: {', '.join(missing)}."
                )
            columns = [headers.index(name) for name in RATE_COLUMNS]
            continue
        values, errors = {}, []
        cleaners = (prefix_of, destination_of, price_of)
        for name, index, clean in zip(RATE_COLUMNS, columns, cleaners, strict=True):
            try:
                values[name] = clean(cells[index] if index < len(cells) else None)
            except ValueError as exc:
                errors.append(f"row {number}, {name}: {exc}")
        prefix = values.get("prefix")
        if prefix is not None and prefix in seen:
            errors.append(f"row {number}, prefix: {prefix} is already on row {seen[prefix]}.")
        elif prefix is not None:
            seen[prefix] = number
        if errors:
            table.problem_count += len(errors)
            table.problems.extend(errors[: max(0, max_problems - len(table.problems))])
        elif not table.problem_count:
            table.rates.append(RateRow(**values))
    if columns is None:
        raise UnreadableFile(
            "The file is empty: a first row naming prefix, destination, price, then the rates."
        )
    if table.problem_count > len(table.problems):
        table.problems.append(f"… and {table.problem_count - len(table.problems)} more.")
    if not table.problems and not table.rates:
        raise UnreadableFile("The file has the columns but no rate.")
    return table


class RateResource(ExportResource):
    """A tariff's rates as a spreadsheet (prefix, destination, price), as rate_table reads them back;
    given a `tariff`, that tariff's only. Imports go through click2call.services.rate_imports."""

    class Meta:
        model = Rate
        fields = ["prefix", "destination", "price"]
        export_order = fields

    def __init__(self, *, tariff: Tariff | None = None, **kwargs):
        super().__init__(**kwargs)
        self.tariff = tariff

    def get_queryset(self):
        queryset = super().get_queryset().select_related("tariff")
        return queryset.filter(tariff=self.tariff) if self.tariff else queryset


class CallRequestResource(ExportResource):
    """The call list for a person's spreadsheet, with a column per comment field ("Type: field"): a
    call's comments of one type are joined with " | " in their order. Each call's cost (its COMPLETED
    price, 0 otherwise) is in `currency`; given `totals`, a last row totals the list (TOTAL in the id
    column, the count under number, the completed under status, the amount under cost)."""

    campaign = fields.Field(attribute="campaign__name", column_name="campaign")
    status = fields.Field(attribute="get_status_display", column_name="status")
    cost = fields.Field(attribute="cost", column_name="cost")
    currency = fields.Field(column_name="currency", dehydrate_method="_currency")

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
            "cost",
            "currency",
        ]
        export_order = fields

    def __init__(
        self, *, comment_columns: list[tuple[str, str]] = (), currency: str = "", totals=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.currency, self.totals = currency, totals
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

    def _currency(self, request):
        return self.currency

    def export(self, queryset=None, **kwargs):
        dataset = super().export(queryset, **kwargs)
        if self.totals is not None:
            total = {
                "id": "TOTAL",
                "number": self.totals.count,
                "status": f"{self.totals.completed} completed",
                "cost": self.totals.amount if kwargs.get("force_native_type") else str(self.totals.amount),
                "currency": self.currency,
            }
            dataset.append([total.get(column, "") for column in dataset.headers])
        return dataset
