"""manager.conf `eventfilter`: pbxsim sends a user only the events its filters let through,
in Asterisk's order (includes first, then excludes), in the legacy and the Asterisk 20 syntax."""

import asyncio

import pytest

from pbxsim.ami import event_passes, load_manager_users
from pbxsim.amiwire import AmiConnection
from pbxsim.harness import AMI_SECRET, AMI_USERNAME, PHONES_DIALPLAN, running_pbxsim

NEWCHANNEL = "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/100-00000001\r\nUniqueid: 1.1\r\n"
LOCAL_NEWCHANNEL = NEWCHANNEL.replace("PJSIP/100", "Local/100@phones")
VARSET = "Event: VarSet\r\nPrivilege: dialplan,all\r\nChannel: PJSIP/100-00000001\r\nVariable: X\r\n"
HANGUP_REQUEST = "Event: HangupRequest\r\nPrivilege: call,all\r\nChannel: PJSIP/100-00000001\r\n"


def filters_of(tmp_path, *lines):
    conf = tmp_path / "manager.conf"
    conf.write_text(
        "[general]\nenabled = yes\n\n[platform]\nsecret = s\nread = all\n" + "\n".join(lines) + "\n"
    )
    return load_manager_users(conf)["platform"].event_filters


def passes(filters, text):
    return event_passes(filters, text.partition("\r\n")[0].removeprefix("Event: "), text)


def test_no_filter_passes_everything(tmp_path):
    filters = filters_of(tmp_path)
    assert filters == ()
    assert passes(filters, VARSET)


def test_legacy_include_is_a_regular_expression_searched_in_the_event(tmp_path):
    filters = filters_of(tmp_path, "eventfilter = Event: Newchannel", "eventfilter=Event: Hangup")
    assert passes(filters, NEWCHANNEL)
    assert not passes(filters, VARSET)
    assert passes(filters, HANGUP_REQUEST)  # "Event: Hangup" is found in "Event: HangupRequest"


def test_legacy_exclude_applies_after_the_includes(tmp_path):
    filters = filters_of(tmp_path, "eventfilter = Event: Newchannel", "eventfilter = !Channel: Local/")
    assert passes(filters, NEWCHANNEL)
    assert not passes(filters, LOCAL_NEWCHANNEL)
    assert not passes(filters, VARSET)


def test_exclude_only_passes_the_rest(tmp_path):
    filters = filters_of(tmp_path, "eventfilter = !Event: VarSet")
    assert passes(filters, NEWCHANNEL)
    assert not passes(filters, VARSET)


def test_advanced_name_matches_the_event_name_exactly(tmp_path):
    filters = filters_of(
        tmp_path,
        "eventfilter(action(include),name(Newchannel)) =",
        "eventfilter(name(Hangup)) =",
        "eventfilter(action(exclude),header(Channel),method(starts_with)) = Local/",
    )
    assert passes(filters, NEWCHANNEL)
    assert not passes(filters, LOCAL_NEWCHANNEL)
    assert not passes(filters, HANGUP_REQUEST)
    assert not passes(filters, VARSET)


@pytest.mark.parametrize(
    "line, passed",
    [
        ("eventfilter(header(Channel),method(exact)) = PJSIP/100-00000001", True),
        ("eventfilter(header(Channel),method(exact)) = PJSIP/100", False),
        ("eventfilter(header(channel),method(ends_with)) = -00000001", True),
        ("eventfilter(header(Channel),method(contains)) = 100-", True),
        ("eventfilter(header(Channel),method(regex)) = ^(PJ)?SIP/1", True),
        ("eventfilter(header(Context)) =", False),  # no such header
    ],
)
def test_advanced_header_and_method(tmp_path, line, passed):
    assert passes(filters_of(tmp_path, line), NEWCHANNEL) is passed


def test_a_filter_asterisk_would_refuse_is_skipped(tmp_path):
    filters = filters_of(tmp_path, "eventfilter = Event: (Newchannel", "eventfilter = Event: VarSet")
    assert len(filters) == 1
    assert passes(filters, VARSET)
    assert not passes(filters, NEWCHANNEL)


def test_the_simulator_sends_a_filtered_user_only_what_passes(tmp_path):
    conf = tmp_path / "manager.conf"
    conf.write_text(
        f"[{AMI_USERNAME}]\nsecret = {AMI_SECRET}\nread = all\nwrite = all\n"
        "eventfilter = Event: UserEvent\neventfilter = !UserEvent: Hidden\n"
    )

    async def scenario(sim):
        connection = await AmiConnection.open(sim.host, sim.port)
        await connection.login()
        for name in ("Hidden", "Shown"):
            answer = await connection.action(
                [("Action", "UserEvent"), ("UserEvent", name), ("ActionID", name)]
            )
            assert answer.get("Response") == "Success", answer.lines
        shown = await connection.wait_for(lambda f: f.event == "UserEvent")
        assert shown.get("UserEvent") == "Shown"
        listed = await connection.action([("Action", "CoreShowChannels"), ("ActionID", "list")])
        assert listed.get("Response") == "Success"  # answers to actions are not filtered
        await connection.wait_for(lambda f: f.event == "CoreShowChannelsComplete")
        await asyncio.sleep(0.2)
        while connection.backlog:
            assert connection.backlog.pop().event != "UserEvent"
        await connection.close()

    with running_pbxsim(dialplans=[PHONES_DIALPLAN], manager_users=conf, time_scale=20) as sim:
        asyncio.run(asyncio.wait_for(scenario(sim), 20))
