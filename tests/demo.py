"""`make run`'s demo PBX on pbxsim, for the apps' demo tests: the contract, the demo phones and
their AMI user, a FastAGI port of its own, and the PbxServer "demo" routing through the phones."""

import contextlib

from pbxsim.harness import free_port, running_pbxsim
from telephony.models import DialRoute
from telephony.testing import CONTRACT
from tests.telephony.factories import PbxServerFactory

DEMO_DIR = CONTRACT.parent / "demo"
DEMO_PHONES = DEMO_DIR / "phones.conf"


@contextlib.contextmanager
def running_demo_pbx(tmp_path, *, time_scale: float):
    """pbxsim on the demo's dialplan and AMI user; yields the demo PbxServer that serves it."""
    agi_port = free_port()
    (tmp_path / "globals.conf").write_text(f"[globals]\nPLATFORM_AGI=agi://127.0.0.1:{agi_port}\n")
    with running_pbxsim(
        dialplans=[CONTRACT, DEMO_PHONES, tmp_path / "globals.conf"],
        manager_users=DEMO_DIR / "manager.conf",
        time_scale=time_scale,
    ) as sim:
        server = PbxServerFactory(
            name="demo",
            ami_port=sim.port,
            agi_bind_port=agi_port,
            ami_username="platform",
            ami_secret="platform-demo",
        )
        DialRoute.objects.update_or_create(
            server=server, name="default", defaults={"template": "Local/{number}@phones"}
        )
        yield server
