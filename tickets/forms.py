"""The portal's ticket line forms: a line's settings, a technician, the SMS settings, the log's
filters. The rules themselves are the models' validators and tickets.services.lines."""

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import RegexValidator

from config.periods import MAX_PERIOD_DAYS, ReportDateField
from config.validators import validate_plain_lines, validate_plain_text, validate_wav_upload
from tickets.models import MAX_TICKET, SmsSettings, Technician, TicketLine
from tickets.services.lines import LINE_SETTINGS
from tickets.sms import validate_sms_parameters

# What a company types for a technician's phone is joined into Dial()'s first argument with `&`:
# a number, or one dial string with no `,` `&` `(` or space that would add targets or options.
internal_phone = RegexValidator(
    r"^(\+?[0-9]{2,20}|[A-Za-z][A-Za-z0-9]{0,19}/[A-Za-z0-9_.+@-]{1,80})$",
    "A number (732, +39 347 ...: digits only) or one dial string such as PJSIP/732.",
)
im_address = RegexValidator(
    r"^[a-z][a-z0-9]{0,19}:[A-Za-z0-9_.+@-]{1,80}$",
    "An address MessageSend takes, such as pjsip:732.",
)


class TicketLineForm(forms.ModelForm):
    """What a company sets of its line; the server and the DID are its operator's (the admin)."""

    next_ticket = forms.IntegerField(
        label="Next ticket",
        min_value=1,
        max_value=MAX_TICKET,
        help_text="the number the next hop gets: set it to restart the numbering (never at a number used)",
    )
    # The counter as the page showed it: a save that leaves the box as it was keeps the counter
    # where calls have moved it since.
    next_ticket_shown = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = TicketLine
        fields = LINE_SETTINGS
        labels = {
            "announcement_sound": "Announcement (sound name)",
            "announcement_file": "Announcement (WAV file)",
            "confirm_seconds": "Wait for the digit (seconds)",
            "record": "Record the calls",
            "ring_seconds": "Ring each technician (seconds)",
            "wrap": "Wrap to the first technician",
            "rounds": "Rounds when wrapping",
            "message_template": "SMS and IM text",
            "retention_days": "Keep recordings (days)",
        }
        widgets = {"message_template": forms.TextInput(attrs={"size": 80})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["next_ticket"] = self.initial["next_ticket_shown"] = self.instance.next_ticket

    def clean_announcement_file(self):
        upload = self.cleaned_data["announcement_file"]
        if isinstance(upload, UploadedFile):
            validate_wav_upload(upload)
        return upload

    def next_ticket_change(self) -> int | None:
        """The counter asked for, or None when the box was left as shown."""
        wanted = self.cleaned_data["next_ticket"]
        return None if wanted == self.cleaned_data.get("next_ticket_shown") else wanted


class TechnicianForm(forms.ModelForm):
    """A technician; the SMS password is write only: left empty, the stored one is kept."""

    new_sms_password = forms.CharField(
        label="SMS password",
        required=False,
        max_length=200,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        validators=Technician._meta.get_field("sms_password").validators,
    )
    clear_sms_password = forms.BooleanField(label="Forget the stored SMS password", required=False)

    class Meta:
        model = Technician
        fields = ["name", "internal", "mobile", "sms_number", "im_address", "sms_username", "active"]
        labels = {
            "internal": "Internal phone",
            "sms_number": "SMS number",
            "im_address": "IM address",
            "sms_username": "SMS user name",
        }

    field_order = [
        "name", "internal", "mobile", "sms_number", "im_address", "sms_username", "new_sms_password",
        "clear_sms_password", "active",
    ]  # fmt: skip

    def __init__(self, *args, line, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.line = line
        self.fields["internal"].validators.append(internal_phone)
        self.fields["im_address"].validators.append(im_address)
        if self.instance.sms_password:
            self.fields["new_sms_password"].help_text = "one is stored: leave empty to keep it"
        else:
            del self.fields["clear_sms_password"]


class SmsSettingsForm(forms.ModelForm):
    """The company's SMS gateway; the secret is write only: left empty, the stored one is kept."""

    url = forms.URLField(
        label="URL", max_length=200, required=False, assume_scheme="https", help_text="the gateway's send URL"
    )
    new_secret = forms.CharField(
        label="Password or token",
        required=False,
        max_length=200,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        validators=SmsSettings._meta.get_field("secret").validators,
    )

    class Meta:
        model = SmsSettings
        fields = [
            "provider",
            "url",
            "method",
            "auth",
            "username",
            "parameters",
            "sender",
            "country_prefix",
            "timeout_seconds",
        ]
        labels = {"url": "URL", "username": "User name", "timeout_seconds": "Timeout (seconds)"}
        widgets = {"parameters": forms.Textarea(attrs={"rows": 4})}

    field_order = ["provider", "url", "method", "auth", "username", "new_secret"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.secret:
            self.fields["new_secret"].help_text = "one is stored: leave empty to keep it"

    def clean_parameters(self):
        text = self.cleaned_data["parameters"]
        validate_plain_lines(text)
        validate_sms_parameters(text)
        return text


ANSWERED_CHOICES = [("", "all"), ("yes", "answered"), ("no", "not answered")]


class HopFilterForm(forms.Form):
    """The log's filters: a line, a period (the company's days, both included), a technician,
    answered or not, and digits of the caller."""

    line = forms.ModelChoiceField(queryset=TicketLine.objects.none(), required=False, empty_label="all")
    start = ReportDateField(required=False, label="From")
    end = ReportDateField(required=False, label="To")
    technician = forms.ModelChoiceField(queryset=Technician.objects.none(), required=False, empty_label="all")
    answered = forms.ChoiceField(choices=ANSWERED_CHOICES, required=False)
    caller = forms.CharField(max_length=40, required=False, validators=[validate_plain_text])

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        # Another company's line or technician is not a choice: "not a valid choice", never its calls.
        self.fields["line"].queryset = TicketLine.objects.filter(company=company).order_by("name", "id")
        self.fields["technician"].queryset = (
            Technician.objects.filter(line__company=company).select_related("line").order_by("name", "id")
        )
        self.fields["line"].label_from_instance = lambda obj: obj.name
        self.fields["technician"].label_from_instance = lambda obj: f"{obj.name} ({obj.line.name})"

    def clean_caller(self):
        return self.cleaned_data["caller"].strip()

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise ValidationError("The period ends before it starts.")
            if (end - start).days >= MAX_PERIOD_DAYS:
                raise ValidationError(f"A period of at most {MAX_PERIOD_DAYS} days.")
        return data

    def filters(self) -> dict:
        data = self.cleaned_data
        answered = {"yes": True, "no": False}.get(data["answered"])
        chosen = {name: data[name] for name in ("line", "start", "end", "technician", "caller") if data[name]}
        return {**chosen, "answered": answered} if answered is not None else chosen
