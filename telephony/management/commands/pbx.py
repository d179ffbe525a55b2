import asyncio
import sys

from django.core.management.base import BaseCommand
from django.utils import timezone

from telephony.pbx import PbxProcess
from telephony.selectors import pbx_server_is_up, pbx_servers_enabled


class Command(BaseCommand):
    help = "Run the pbx process: AMI sessions, call records, the event bus and FastAGI (until SIGTERM)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="print each enabled server's health and exit non-zero when one is down",
        )

    def handle(self, *args, check=False, **options):
        if check:
            sys.exit(self.report_health())
        asyncio.run(PbxProcess().run())

    def report_health(self) -> int:
        servers = pbx_servers_enabled()
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
            error = f" ({server.last_error})" if server.last_error and not up else ""
            self.stdout.write(
                f"{server.name}: {'up' if up else 'DOWN'}, state {server.state}{error}, last event {last}"
            )
        return 1 if down else 0
