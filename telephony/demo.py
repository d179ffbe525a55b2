"""The demo PBX of `make run`: the simulator started by Procfile.demo."""

import os

from telephony.models import DialRoute, PbxServer


def load_demo_pbx(sender, *, company, write, **kwargs):
    server, _ = PbxServer.objects.update_or_create(
        name="demo",
        defaults={
            "ami_host": "127.0.0.1",
            "ami_port": int(os.environ.get("PBXSIM_PORT", "5038")),
            "ami_username": "platform",
            "ami_secret": "platform-demo",
            "agi_bind_host": "127.0.0.1",
            "agi_bind_port": 4573,
            "outbound_caller_id": f'"{company.name}" <5550000>',
            "enabled": True,
        },
    )
    DialRoute.objects.update_or_create(
        server=server, name="default", defaults={"template": "Local/{number}@phones"}
    )
    write(f"  PBX server:               {server.name} (the simulator on {server.ami_host}:{server.ami_port})")
