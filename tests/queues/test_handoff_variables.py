"""queues.services.handoff without a PBX: the variables a source app sets, what [platform-queue]
keeps of them, and queue_call before and after a caller joined."""

import pytest

from queues.services.calls import member_join
from queues.services.handoff import bridge_limit, limit_fields, queue_call, queue_variables
from tests.queues.factories import QueueFactory


def test_the_variables_send_the_caller_on_to_the_queue_with_its_limit():
    assert queue_variables(
        queue="support@acme",
        source_app="callcards",
        source_ref="call:42",
        talk_limit_seconds=600,
        warning_seconds=60,
        warning_sound="beep",
        timeout_sound="custom/card-empty",
    ) == {
        "PLATFORM_QUEUE": "support@acme",
        "CC_SOURCE_APP": "callcards",
        "CC_SOURCE_REF": "call:42",
        "CC_TALK_LIMIT": "600",
        "CC_TALK_WARNING": "60",
        "CC_LIMIT_WARNING_FILE": "beep",
        "CC_LIMIT_TIMEOUT_FILE": "custom/card-empty",
        "PLATFORM_AGI_NEXT": "platform-queue",
    }


def test_without_a_limit_only_the_queue_and_the_source_are_set():
    assert queue_variables(queue="support@acme", source_app="tickets", source_ref="7") == {
        "PLATFORM_QUEUE": "support@acme",
        "CC_SOURCE_APP": "tickets",
        "CC_SOURCE_REF": "7",
        "PLATFORM_AGI_NEXT": "platform-queue",
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"queue": "support"},
        {"queue": "support@acme,s,1"},
        {"source_app": ""},
        {"source_app": "call cards"},
        {"source_ref": "a}b"},
        {"source_ref": "x" * 121},
        {"talk_limit_seconds": 0},
        {"talk_limit_seconds": 86401},
        {"talk_limit_seconds": 60, "warning_seconds": 60},
        {"talk_limit_seconds": 60, "warning_sound": "beep"},
        {"talk_limit_seconds": 60, "timeout_sound": "../../etc/passwd"},
        {"talk_limit_seconds": 60, "timeout_sound": "beep&vm-goodbye"},
        {"talk_limit_seconds": 60, "timeout_sound": "${EXTEN}"},
        {"warning_seconds": 10},
        {"timeout_sound": "beep"},
    ],
)
def test_what_the_dialplan_could_not_carry_is_refused(changes):
    arguments = {"queue": "support@acme", "source_app": "callcards", "source_ref": "call:1"} | changes
    with pytest.raises(ValueError):
        queue_variables(**arguments)


def test_the_queue_keeps_a_valid_limit_and_drops_the_rest():
    kept = limit_fields(talk_limit="90", talk_warning="30", warning_file="beep", timeout_file="vm-goodbye")
    assert kept == {
        "talk_limit": 90,
        "talk_warning": 30,
        "limit_warning_file": "beep",
        "limit_timeout_file": "vm-goodbye",
    }
    assert limit_fields(talk_limit="", talk_warning="30", warning_file="beep", timeout_file="") == {}
    assert limit_fields(talk_limit="-5", talk_warning="", warning_file="", timeout_file="") == {}
    assert limit_fields(talk_limit="9" * 12, talk_warning="", warning_file="", timeout_file="") == {}
    odd = limit_fields(talk_limit="90", talk_warning="90", warning_file="a;b", timeout_file="../x")
    assert odd == {"talk_limit": 90}
    assert bridge_limit(talk_limit=90, talk_warning=30) == "90000:30000"
    assert bridge_limit(talk_limit=90, talk_warning=None) == "90000"


@pytest.mark.django_db
def test_queue_call_reads_the_member_the_source_app_sent():
    queue = QueueFactory()
    assert queue_call(source_app="callcards", source_ref="call:9") is None
    joined = member_join(
        server_id=queue.server_id,
        queue_name=queue.full_name,
        uniqueid="in-9",
        channel="PJSIP/x-1",
        source_app="callcards",
        source_ref="call:9",
        **limit_fields(talk_limit="120", talk_warning="", warning_file="", timeout_file="beep"),
    )
    found = queue_call(source_app="callcards", source_ref="call:9")
    assert found.member_uuid == str(joined.member.uuid) and found.queue == queue.full_name
    assert found.state == "Waiting" and not found.answered and not found.over and found.agent == ""
    assert found.talk_limit == 120 and joined.member.limit_timeout_file == "beep"
    assert queue_call(source_app="tickets", source_ref="call:9") is None
