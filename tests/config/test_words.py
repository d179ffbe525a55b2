"""The portal's words for the platform's codes (config/words.py)."""

import pytest

from click2call.models import CallAttempt, CallRequest
from config import words
from queues.models import Agent, Member, QueueEvent, Tier
from telephony.models import CallRecord, WebhookDelivery


@pytest.mark.parametrize(
    ("vocabulary", "choices"),
    [
        (words.C2C_REQUEST_STATUS, CallRequest.Status),
        (words.C2C_ATTEMPT_STATUS, CallAttempt.Status),
        (words.C2C_ATTEMPT_KIND, CallAttempt.Kind),
        (words.DISPOSITION, CallRecord.Disposition),
        (words.DIRECTION, CallRecord.Direction),
        (words.DELIVERY_STATUS, WebhookDelivery.Status),
        (words.AGENT_STATUS, Agent.Status),
        (words.AGENT_STATE, Agent.State),
        (words.TIER_STATE, Tier.State),
        (words.MEMBER_STATE, Member.State),
        (words.QUEUE_EVENT, QueueEvent.Action),
    ],
)
def test_every_code_has_words_in_sentence_case(vocabulary, choices):
    assert set(vocabulary) == set(choices.values)  # a code added later gets its words too
    for phrase in vocabulary.values():
        assert phrase[0].isupper() and phrase[1:] == phrase[1:].lower() or phrase.startswith("Not dialed"), (
            phrase
        )


@pytest.mark.parametrize(
    ("status", "detail", "first_party", "reason"),
    [
        ("COMPLETED", "bridged", "visitor", "the visitor and the company were put through"),
        ("FAILED_USER", "first party: no_answer", "visitor", "the visitor did not answer"),
        ("FAILED_COMPANY", "first party: busy", "company", "the company was busy"),
        ("FAILED_USER", "message: hung up", "visitor", "the visitor hung up during the message"),
        ("FAILED_USER", "dialing: CANCEL", "visitor", "the visitor hung up while the company rang"),
        ("FAILED_COMPANY", "dialing: NOANSWER", "visitor", "the company did not answer"),
        ("FAILED_USER", "dialing: BUSY", "company", "the visitor was busy"),
        (
            "FAILED_COMPANY",
            "dialing: CHANUNAVAIL",
            "visitor",
            "the company could not be reached (line unavailable)",
        ),
        ("FAILED_USER", "ended without a report", "visitor", "ended without a report"),
    ],
)
def test_a_tries_outcome_is_one_sentence(status, detail, first_party, reason):
    said = words.attempt_outcome(status=status, detail=detail, first_party=first_party)
    assert said == f"{words.C2C_ATTEMPT_STATUS[status]}: {reason}"


def test_a_try_still_calling_has_no_reason_yet():
    assert words.attempt_outcome(status="dialing", detail="", first_party="visitor") == "Calling"


@pytest.mark.parametrize(
    ("callee", "said"),
    [
        ("Local/s@platform-click2call-company/n", "your operators"),
        ("Local/5551001@phones/n", "5551001"),
        ("PJSIP/+33612345678@carrier", "+33612345678"),
        ("+33612345678", "+33612345678"),
        ("", "—"),
    ],
)
def test_a_leg_names_its_party_not_its_dial_string(callee, said):
    assert words.party(callee) == said


def test_hangup_causes_read_as_words():
    assert words.hangup(16, "Normal Clearing") == "hung up"
    assert words.hangup(66, "Channel not implemented") == "channel not implemented"
    assert words.hangup(None, "") == ""
