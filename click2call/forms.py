"""The portal's forms for click2call; the rules themselves live in click2call.services."""

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from click2call import stats
from click2call.models import (
    BlockedPrefix,
    CallRequest,
    Campaign,
    CommentField,
    CommentType,
    Operator,
    Rate,
    Tariff,
)
from click2call.selectors import campaign_placement
from click2call.services.comments import MAX_TEXT, comment_values_clean
from click2call.services.rating import NumberRefused, operator_number_normalize
from config.validators import validate_wav_upload

MAX_IMPORT_BYTES = 20 * 1024 * 1024  # 10^5 rates are about 4 MB of CSV


class CallFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "all"), *CallRequest.Status.choices], required=False)
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.none(), required=False, empty_label="all")
    start = forms.DateField(required=False)
    end = forms.DateField(required=False)
    direction = forms.CharField(max_length=80, required=False, help_text="country, region or carrier")

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = Campaign.objects.filter(company=company)


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name",
            "active",
            "tariff",
            "first_party",
            "ringing",
            "message_sound",
            "message_file",
            "ring_timeout",
            "redial_count",
            "redial_pause",
            "visitor_caller_id",
            "company_caller_id",
            "allowed_origins",
            "default_country",
            "reminder_minutes",
            "reminder_email",
        ]
        widgets = {"allowed_origins": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.company = company
        self.fields["tariff"].queryset = Tariff.objects.filter(company=company)

    def clean_message_file(self):
        upload = self.cleaned_data["message_file"]
        if not isinstance(upload, UploadedFile):  # kept, or cleared
            return upload
        validate_wav_upload(upload)
        return upload

    def clean(self):
        # The PBX server and its dial route are the operator's to set (the admin): a company never
        # sees the platform's servers. A new campaign goes where the company's calls already go.
        cleaned = super().clean()
        if self.instance.server_id is None:
            placed = campaign_placement(company=self.instance.company)
            if placed is None:
                raise forms.ValidationError(
                    "No PBX server is set up for your company yet: ask your operator to create your first "
                    "campaign in the admin."
                )
            self.instance.server, self.instance.route = placed
        return cleaned


class CampaignOperatorsForm(forms.Form):
    """One box per operator of the company: its place in the ringing order, empty when not on the campaign."""

    def __init__(self, *args, operators, current: dict[int, int], **kwargs):
        super().__init__(*args, **kwargs)
        self.operators = list(operators)
        for operator in self.operators:
            self.fields[f"op_{operator.pk}"] = forms.IntegerField(
                label=str(operator),
                required=False,
                min_value=1,
                max_value=999,
                initial=current.get(operator.pk),
            )

    def ordered_operators(self) -> list[Operator]:
        chosen = [
            (self.cleaned_data[f"op_{operator.pk}"], operator.name, operator)
            for operator in self.operators
            if self.cleaned_data.get(f"op_{operator.pk}") is not None
        ]
        return [operator for _, _, operator in sorted(chosen, key=lambda item: item[:2])]


class OperatorForm(forms.ModelForm):
    """A company's operator is a number; a dial string (PJSIP/reception) is set by staff, in the admin."""

    class Meta:
        model = Operator
        fields = ["name", "number", "active"]
        help_texts = {"number": "in international form: + and the country code (+33 6 12 34 56 78)"}

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.company = company
        self.fields["number"].required = not self.instance.dial_string

    def clean_number(self):
        number = self.cleaned_data["number"]
        if not number:
            return number
        if self.instance.dial_string:
            raise ValidationError(
                "This operator rings a dial string set by your operator: ask them to change it."
            )
        try:
            return operator_number_normalize(raw=number)
        except NumberRefused as refused:
            raise ValidationError(refused.detail) from None


class TariffForm(forms.ModelForm):
    class Meta:
        model = Tariff
        fields = ["name"]

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.company = company


class RateForm(forms.ModelForm):
    class Meta:
        model = Rate
        fields = ["prefix", "destination", "price"]

    def __init__(self, *args, tariff, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.tariff = tariff


class RateSearchForm(forms.Form):
    prefix = forms.RegexField(regex=r"^[0-9]{1,15}$", required=False, max_length=15)


class RateImportForm(forms.Form):
    file = forms.FileField(help_text="CSV or XLSX with the columns prefix, destination, price")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise ValidationError(f"At most {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
        if not upload.name.lower().endswith((".csv", ".xlsx")):
            raise ValidationError("A .csv or .xlsx file.")
        return upload


class BlockedPrefixForm(forms.ModelForm):
    class Meta:
        model = BlockedPrefix
        fields = ["prefix", "reason"]

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.company = company


class CommentTypeForm(forms.ModelForm):
    class Meta:
        model = CommentType
        fields = ["name", "active"]

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.company = company


CommentFieldFormSet = forms.inlineformset_factory(
    CommentType,
    CommentField,
    fields=["name", "kind", "choices", "required"],
    widgets={"choices": forms.Textarea(attrs={"rows": 2})},
    extra=2,
    max_num=30,
    validate_max=True,
    can_delete=True,
)


class CommentTypeChoiceForm(forms.Form):
    """The comment type a comment is added with: an id the database can hold, in ASCII digits."""

    comment_type = forms.IntegerField(min_value=1, max_value=2**31 - 1)


class CallCommentForm(forms.Form):
    """A comment type's fields as inputs; what they accept is decided by click2call.services.comments."""

    def __init__(self, *args, comment_type: CommentType, **kwargs):
        super().__init__(*args, **kwargs)
        self.comment_type = comment_type
        self.prefix = f"type{comment_type.pk}"
        # Inputs are named by the field's id: a company names its fields as it likes ("__all__" included).
        self.names = {f"f{field.pk}": field.name for field in comment_type.fields.all()}
        for field in comment_type.fields.all():
            self.fields[f"f{field.pk}"] = self._input(field)

    @staticmethod
    def _input(field: CommentField) -> forms.Field:
        kind = CommentField.Kind
        options = {"label": field.name, "required": field.required}
        if field.kind == kind.CHOICE:
            choices = [("", "—"), *((choice, choice) for choice in field.choice_list())]
            return forms.ChoiceField(choices=choices, **options)
        if field.kind == kind.NUMBER:
            return forms.CharField(widget=forms.NumberInput(attrs={"step": "any"}), max_length=40, **options)
        if field.kind == kind.DATE:
            return forms.CharField(widget=forms.DateInput(attrs={"type": "date"}), max_length=10, **options)
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=MAX_TEXT, **options)

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned.get(key) for key, name in self.names.items() if key not in self.errors}
        inputs = {name: key for key, name in self.names.items()}
        try:
            self.values = comment_values_clean(comment_type=self.comment_type, values=values)
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                key = inputs.get(name)
                if key and key not in self.errors:
                    self.add_error(key, messages)
        return cleaned


class StatsForm(forms.Form):
    """The statistics' period: the day (by hour; the default), week or month holding `day` (today
    when left out), or the dates from `start` to `end`, days of the company's time zone; compared
    with the period before, with two other dates, or with nothing. `cleaned_data` gets `period` and
    `compared` as (start, end)."""

    KINDS = [("day", "Day"), ("week", "Week"), ("month", "Month"), ("custom", "Dates")]
    COMPARE = [("previous", "the period before"), ("custom", "other dates"), ("none", "nothing")]

    kind = forms.ChoiceField(choices=KINDS, required=False, label="Period")
    day = forms.DateField(required=False, label="Day in it")
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.none(), required=False, empty_label="all")
    compare = forms.ChoiceField(choices=COMPARE, required=False, label="Compared with")
    compare_start = forms.DateField(required=False, label="Compared from")
    compare_end = forms.DateField(required=False, label="Compared to")

    def __init__(self, *args, company, today, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["campaign"].queryset = Campaign.objects.filter(company=company).order_by("name")
        self.fields["campaign"].label_from_instance = lambda campaign: campaign.name

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        kind = data["kind"] = data.get("kind") or "day"
        if kind == "custom":
            start = data.get("start") or data.get("end") or self.today
            period = (start, data.get("end") or max(start, self.today))
        else:
            period = stats.period_of(kind, data.get("day") or self.today)
        compare = data["compare"] = data.get("compare") or "previous"
        if compare == "custom":
            if not (data.get("compare_start") and data.get("compare_end")):
                raise ValidationError("Give both dates of the period to compare with.")
            compared = (data["compare_start"], data["compare_end"])
        elif compare == "previous":
            compared = stats.previous_period(*period, kind, today=self.today)
        else:
            compared = None
        for dates in (period, compared):
            problem = dates and stats.period_problem(*dates)
            if problem:
                raise ValidationError(problem)
        data["period"], data["compared"] = period, compared
        return data
