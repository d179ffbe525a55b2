"""The demo PBX of `make run`: the simulator started by Procfile.demo."""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from telephony.models import DialRoute, PbxServer

# Offsets from DEMO_PORT_BASE, echoing Asterisk's own 5038 and 4573; Procfile.demo adds the same 38.
AMI_OFFSET = 38
AGI_OFFSET = 73
# The ports the demo server had before DEMO_PORT_BASE: a database from then still follows the demo.
LEGACY_PORTS = (5038, 4573)


@dataclass(frozen=True)
class DemoPorts:
    web: int
    ami: int
    agi: int

    @classmethod
    def from_base(cls, base: int) -> "DemoPorts":
        return cls(web=base, ami=base + AMI_OFFSET, agi=base + AGI_OFFSET)


def demo_ports() -> DemoPorts:
    return DemoPorts.from_base(settings.DEMO_PORT_BASE)


def demo_globals_file() -> Path:
    """The [globals] the demo simulator loads (Procfile.demo): where the pbx process serves FastAGI."""
    return settings.VAR_DIR / "demo" / "globals.conf"


def follows_demo_ports(server: PbxServer) -> bool:
    """Ports some DEMO_PORT_BASE gave (or the old fixed ones), not ports an operator typed in."""
    ports = (server.ami_port, server.agi_bind_port)
    return ports == LEGACY_PORTS or server.ami_port - AMI_OFFSET == server.agi_bind_port - AGI_OFFSET


def load_demo_pbx(sender, *, company, write, **kwargs):
    ports = demo_ports()
    path = demo_globals_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"; Written by `manage.py demo_data` from DEMO_PORT_BASE: where `manage.py pbx` serves FastAGI.\n"
        f"[globals]\nPLATFORM_AGI=agi://127.0.0.1:{ports.agi}\n"
    )
    server, created = PbxServer.objects.get_or_create(
        name="demo",
        defaults={
            "ami_host": "127.0.0.1",
            "ami_port": ports.ami,
            "ami_username": "platform",
            "ami_secret": "platform-demo",
            "agi_bind_host": "127.0.0.1",
            "agi_bind_port": ports.agi,
            "outbound_caller_id": f'"{company.name}" <5550000>',
            "enabled": True,
        },
    )
    if not created and follows_demo_ports(server):
        server.ami_port, server.agi_bind_port = ports.ami, ports.agi
        server.save(update_fields=["ami_port", "agi_bind_port"])
    DialRoute.objects.get_or_create(
        server=server, name="default", defaults={"template": "Local/{number}@phones"}
    )
    write(f"  PBX server:               {server.name} (the simulator on {server.ami_host}:{server.ami_port})")
    if (server.ami_port, server.agi_bind_port) != (ports.ami, ports.agi):
        write(
            f"    its ports were edited ({server.ami_port}, FastAGI {server.agi_bind_port}) and are kept: "
            f"the simulator listens on {ports.ami}, FastAGI is expected on {ports.agi} "
            f"(DEMO_PORT_BASE={settings.DEMO_PORT_BASE})"
        )
