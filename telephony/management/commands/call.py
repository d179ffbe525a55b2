"""`manage.py call NUMBER`: place one call through the facade, as the apps do, and print its outcome."""

import contextlib
import logging
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from accounts.models import Company
from telephony.facade import AmiConnectionLost, AmiError, OriginateOutcomeUnknown, facade
from telephony.models import PbxServer
from telephony.services.originate import call_record_give_up

# The answered party waits in the contract's platform-hold; a demo call should not hold for 10 minutes.
HOLD_SECONDS = 60


class Command(BaseCommand):
    help = (
        "Place a call to NUMBER through a PBX server's default dial route (the demo simulator by default), "
        "wait for its outcome and print it; the call shows in the company's portal."
    )

    def add_arguments(self, parser):
        parser.add_argument("number", help="the number to ring, e.g. 5551001 (see README: the demo phones)")
        parser.add_argument("--from", dest="caller_id", default="", help="caller ID (default: the server's)")
        parser.add_argument("--server", default="demo", help="PBX server name (default: demo)")
        parser.add_argument(
            "--company", default="demo", help="slug of the company the call is recorded for (default: demo)"
        )
        parser.add_argument("--timeout", type=int, default=30, help="seconds to let it ring (default: 30)")

    def handle(self, *args, number, caller_id, server, company, timeout, **options):
        try:
            pbx_server = PbxServer.objects.get(name=server)
        except PbxServer.DoesNotExist:
            names = ", ".join(PbxServer.objects.values_list("name", flat=True)) or "none; run demo_data"
            raise CommandError(f"no PBX server named {server!r} (servers: {names})") from None
        try:
            owner = Company.objects.get(slug=company)
        except Company.DoesNotExist:
            raise CommandError(f"no company with slug {company!r}") from None
        channel_id = f"call-{uuid.uuid4().hex[:12]}"
        # Quiet until the sessions are closed: a reconnect attempt after the failure is noise too.
        with quiet_ami_logs():
            try:
                outcome = facade.originate(
                    server=pbx_server,
                    channel_id=channel_id,
                    number=number,
                    context="platform-hold",
                    variables={
                        "PLATFORM_CALL": f"manage.py call {channel_id}",
                        "PLATFORM_HOLD_MAX": HOLD_SECONDS,
                    },
                    caller_id=caller_id,
                    timeout=timeout,
                    company=owner,
                    app="call",
                    wait=True,
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            except OriginateOutcomeUnknown as exc:
                raise CommandError(f"the call was placed, but its outcome never came: {exc}") from None
            except AmiConnectionLost as exc:
                # A one-shot command does not retry: a call it could not send is over, not pending.
                call_record_give_up(server=pbx_server, uniqueid=channel_id, reason=str(exc))
                where = f"{pbx_server.ami_host}:{pbx_server.ami_port}"
                raise CommandError(f"cannot reach PBX server {pbx_server.name} at {where}: {exc}") from None
            except AmiError as exc:
                raise CommandError(f"PBX server {pbx_server.name} refused the call: {exc}") from None
            finally:
                facade.close()
        calls = reverse("telephony:calls", kwargs={"company_slug": owner.slug})
        self.stdout.write(f"{number}: {outcome.outcome} (call {channel_id}, listed at {calls})")


@contextlib.contextmanager
def quiet_ami_logs():
    """The AMI client logs each login and reconnect attempt: a one-shot command reports once, at the end."""
    loggers = [logging.getLogger(name) for name in ("telephony.ami", "panoramisk")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
