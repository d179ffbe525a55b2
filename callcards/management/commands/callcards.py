"""`manage.py callcards generate ...`: a batch of cards made from the command line.

The command makes the cards itself, in the foreground, printing its progress (no worker needed,
whatever the batch's size). A refusal (an unknown company, a bad value, a run/batch taken) is one
line on stderr and exit status 1, never a traceback; nothing is made then.
"""

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Company, User
from callcards.models import CardBatch, Language
from callcards.services import cards
from queues.models import Queue


def amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite():
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = "Call cards: generate a batch (manage.py callcards generate --help)."

    def add_arguments(self, parser):
        verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
        generate = verbs.add_parser(
            "generate",
            help="make a batch of cards",
            description="Make a batch of cards (status GENERATE), printing the progress.",
        )
        generate.add_argument("--company", required=True, metavar="SLUG")
        generate.add_argument("--run", required=True, help="the seed's run, e.g. R1 (up to 4 characters)")
        generate.add_argument("--batch", required=True, help="the batch within the run (up to 5 characters)")
        generate.add_argument("--count", required=True, type=int, help="cards to make, 1 to 1,000,000")
        generate.add_argument("--pack-size", type=int, default=100, help="cards per pack (default 100)")
        generate.add_argument("--minutes", type=int, required=True, help="each card's initial minutes")
        generate.add_argument("--value", type=amount, default=Decimal(0), help="the sale price")
        generate.add_argument("--warning-minutes", type=int, default=1, help="0 to 60 (default 1)")
        generate.add_argument("--language", default=Language.ENGLISH, choices=Language.values)
        generate.add_argument("--did", default="", help="the number printed on the cards")
        generate.add_argument("--queue", default="", metavar="NAME", help="the company's inbound queue")
        generate.add_argument("--purchase-order", default="")
        generate.add_argument("--printer", default="")
        generate.add_argument("--user", default="", metavar="USERNAME", help="recorded as the cards' creator")

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            self.stderr.write(f"callcards: {exc}")
            raise SystemExit(1) from None

    def handle(self, *args, verb, **options):
        if verb == "generate":
            self.generate(**options)

    def generate(self, *, company, run, batch, count, pack_size, minutes, value, warning_minutes, language,
                 did, queue, purchase_order, printer, user, **options):  # fmt: skip
        try:
            company_row = Company.objects.get(slug=company)
        except Company.DoesNotExist:
            raise CommandError(f"no company {company!r}") from None
        queue_row = None
        if queue:
            queue_row = Queue.objects.filter(company=company_row, name=queue).first()
            if queue_row is None:
                raise CommandError(f"company {company} has no queue {queue!r}")
        user_row = None
        if user:
            user_row = User.objects.filter(username=user).first()
            if user_row is None:
                raise CommandError(f"no user {user!r}")

        def progress(made: CardBatch):
            self.stdout.write(f"{made.generated} of {made.count} cards ({made.progress}%)")

        try:
            made = cards.batch_create(
                company=company_row,
                user=user_row,
                run=run,
                batch=batch,
                count=count,
                pack_size=pack_size,
                initial_minutes=minutes,
                initial_value=value,
                warning_minutes=warning_minutes,
                language=language,
                did=did,
                queue=queue_row,
                purchase_order=purchase_order,
                printer=printer,
                background=False,
                progress=progress,
            )
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from None
        except cards.GenerationStopped as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"batch {made.run}/{made.batch}: {made.generated} cards made (id {made.pk})")


def _messages(exc: ValidationError) -> str:
    option = {"initial_minutes": "minutes", "initial_value": "value"}
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"--{option.get(field, field).replace('_', '-')}: {' '.join(errors)}"
            if field != "__all__"
            else " ".join(errors)
            for field, errors in exc.message_dict.items()
        )
    return " ".join(exc.messages)
