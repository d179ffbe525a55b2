"""`manage.py callcards generate`: a batch made in the foreground with its progress printed; bad
input is one line on stderr and exit status 1, nothing made."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from callcards.models import Card, CardBatch
from callcards.services import cards as card_services
from tests.factories import UserFactory
from tests.queues.factories import QueueFactory

pytestmark = pytest.mark.django_db


def generate(*args):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("callcards", "generate", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        code = exit_.code
    except CommandError as exc:  # argparse's refusal: from the shell, its usage and exit status 2
        return 2, out.getvalue(), str(exc)
    return code, out.getvalue(), err.getvalue()


def test_a_batch_is_generated_with_its_progress(company, monkeypatch):
    monkeypatch.setattr(card_services, "CHUNK", 10)
    queue = QueueFactory(company=company, name="advice")
    user = UserFactory(company=None, is_staff=True)
    code, out, err = generate(
        f"--company={company.slug}", "--run=R2", "--batch=B7", "--count=25", "--pack-size=10",
        "--minutes=60", "--value=12.50", "--warning-minutes=2", "--language=es", "--did=5559999",
        "--queue=advice", "--purchase-order=PO-42", "--printer=Print shop", f"--user={user.username}",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.splitlines()[:3] == ["10 of 25 cards (40%)", "20 of 25 cards (80%)", "25 of 25 cards (100%)"]
    batch = CardBatch.objects.get()
    assert f"batch R2/B7: 25 cards made (id {batch.pk})" in out
    assert (batch.count, batch.pack_size, batch.initial_minutes, str(batch.initial_value)) == (
        25,
        10,
        60,
        "12.50",
    )
    made = (batch.language, batch.did, batch.queue, batch.purchase_order, batch.printer, batch.created_by)
    assert made == ("es", "5559999", queue, "PO-42", "Print shop", user)
    assert Card.objects.filter(batch=batch, queue=queue, language="es", warning_minutes=2).count() == 25


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--company=nope"], "callcards: no company 'nope'"),
        (["--count=0"], "callcards: --count: Ensure this value is greater than or equal to 1."),
        (["--count=1000001"], "callcards: --count: Ensure this value is less than or equal to 1000000."),
        (["--minutes=0"], "callcards: --minutes: Ensure this value is greater than or equal to 1."),
        (["--run=R\n1"], "callcards: --run: Letters, digits, _ and -, at most 4."),
        (["--did=٥٥٥"], "callcards: --did: Digits only, at most 18."),
        (["--purchase-order=PO\r\n1"], "callcards: --purchase-order: Invisible or control characters"),
        (["--queue=nope"], "has no queue 'nope'"),
        (["--value=1e999999"], "callcards: --value: Ensure that there are no more than"),
        (["--value=-5"], "callcards: --value: Ensure this value is greater than or equal to 0."),
        (["--user=nobody"], "callcards: no user 'nobody'"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_1(company, args, message):
    base = {"--company": company.slug, "--run": "R1", "--batch": "B1", "--count": "3", "--minutes": "10"}
    for arg in args:
        base[arg.split("=")[0]] = arg.split("=", 1)[1]
    code, out, err = generate(*(f"{k}={v}" for k, v in base.items()))
    assert code == 1 and message in err and "Traceback" not in err
    assert not CardBatch.objects.exists() and not Card.objects.exists()


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("--value=NaN", "argument --value: invalid amount value: 'NaN'"),
        ("--count=abc", "argument --count: invalid int value: 'abc'"),
        ("--language=xx", "argument --language: invalid choice: 'xx'"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_by_the_parser(company, arg, message):
    args = [f"--company={company.slug}", "--run=R1", "--batch=B1", "--count=3", "--minutes=10", arg]
    code, _out, err = generate(*args)
    assert code == 2 and message in err
    assert not CardBatch.objects.exists()


def test_a_batch_taken_is_refused(company):
    args = [f"--company={company.slug}", "--run=R1", "--batch=B1", "--count=2", "--minutes=5"]
    assert generate(*args)[0] == 0
    code, _out, err = generate(*args)
    assert code == 1 and "Card batch with this Company, Run and Batch already exists." in err
    assert Card.objects.count() == 2


def test_from_the_shell_a_refusal_has_no_traceback(tmp_path):
    env_project = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "manage.py", "callcards", "generate", "--company", "x", "--run", "R1",
         "--batch", "B", "--count", "huge", "--minutes", "1"],
        cwd=env_project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "invalid int value: 'huge'" in result.stderr
    assert "Traceback" not in result.stderr
