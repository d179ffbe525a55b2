import pytest
from django.core.management import call_command

from telephony.models import PbxServer

pytestmark = pytest.mark.django_db


def test_demo_data_adds_the_simulator_as_pbx_server(capsys):
    call_command("demo_data")
    call_command("demo_data")
    server = PbxServer.objects.get()
    assert (server.name, server.ami_port, server.routes.get().dial_string("5551001")) == (
        "demo",
        5038,
        "Local/5551001@phones",
    )
    assert "PBX server:               demo" in capsys.readouterr().out
