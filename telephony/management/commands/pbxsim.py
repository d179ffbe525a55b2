"""`manage.py pbxsim`: run the PBX simulator (see pbxsim/) until SIGTERM/SIGINT."""

from django.core.management.base import BaseCommand, CommandError

from pbxsim.command import PbxsimStartError, add_arguments, run


class Command(BaseCommand):
    help = "Run the PBX simulator: an Asterisk-like AMI server running extensions.conf dialplans."

    def add_arguments(self, parser):
        add_arguments(parser)

    def handle(self, *args, **options):
        try:
            run(options)
        except PbxsimStartError as exc:
            raise CommandError(str(exc)) from exc
