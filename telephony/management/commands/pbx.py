import asyncio
import sys

from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from telephony.models import PbxServer
from telephony.process import PbxProcess
from telephony.selectors import call_records_stale_open, pbx_server_is_up, pbx_servers_enabled


class Command(BaseCommand):
    help = "Run the pbx process: AMI sessions, call records, the apps and FastAGI (until SIGTERM)."
    # Every check but the URL configuration's and the admin's: checking them imports every view,
    # the API and its schema, every ModelAdmin and the spreadsheet libraries (about 50 MiB held for
    # the process's life) for a process that serves no page. `manage.py check` and `migrate` at a
    # deploy still check them.
    requires_system_checks = [
        tag
        for name, tag in vars(Tags).items()
        if not name.startswith("_") and tag not in (Tags.urls, Tags.admin)
    ]

    def add_arguments(self, parser):
        parser.add_argument(
            "--server",
            action="append",
            dest="servers",
            metavar="NAME",
            help="own only this PBX server (repeat for more); default: every enabled one",
        )
        parser.add_argument(
            "--standby",
            action="store_true",
            help="take a server only when its owner died (its lease lapsed) or nobody took it for a "
            "lease period (PBX_LEASE_SECONDS): the processes that name it go first",
        )
        parser.add_argument(
            "--fold-workers",
            type=int,
            default=0,
            metavar="N",
            help="fold each server's call events in N child processes, split by call "
            "(for a server busier than one core); default 0: in this process",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="print each enabled server's health and exit non-zero when one is down",
        )

    def handle(self, *args, servers=None, check=False, standby=False, fold_workers=0, **options):
        if fold_workers < 0:
            raise CommandError("--fold-workers takes 0 or more")
        if servers:
            unknown = set(servers) - set(
                PbxServer.objects.filter(name__in=servers).values_list("name", flat=True)
            )
            if unknown:
                raise CommandError(f"no PBX server named {', '.join(sorted(unknown))}")
        if check:
            sys.exit(self.report_health(servers))
        asyncio.run(PbxProcess(server_names=servers, standby=standby, fold_workers=fold_workers).run())

    def report_health(self, names) -> int:
        servers = pbx_servers_enabled(names=names)
        if not servers:
            self.stderr.write("no enabled PBX server")
            return 1
        down = 0
        now = timezone.now()
        for server in servers:
            up = pbx_server_is_up(server)
            down += not up
            last = (
                f"{int((now - server.last_event_at).total_seconds())} s ago"
                if server.last_event_at
                else "never"
            )
            if server.lease_owner and server.lease_expires_at and server.lease_expires_at > now:
                owner = f"owned by {server.lease_owner}"
            elif server.lease_expires_at:
                ago = int((now - server.lease_expires_at).total_seconds())
                owner = f"NO pbx process owns it (its lease lapsed {ago} s ago: is `manage.py pbx` running?)"
            else:
                owner = "NO pbx process owns it (is `manage.py pbx` running?)"
            error = f" ({server.last_error})" if server.last_error and not up else ""
            health = "up" if up else "DOWN"
            lines = [f"{server.name}: {health}, state {server.state}{error}, last event {last}, {owner}"]
            if up:
                lines.append(f"  events waiting to be folded: {server.event_lag}")
                if server.events_timestamped is False:
                    lines.append(
                        "  events carry no Timestamp: calls are timed on arrival; "
                        "set timestampevents = yes in manager.conf"
                    )
            stale = call_records_stale_open(server=server)
            if stale:
                lines.append(f"  {stale} call record(s) open for longer than any plausible call")
            self.stdout.write("\n".join(lines))
        return 1 if down else 0
