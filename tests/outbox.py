"""Mail servers for the tests of config.outbox's users (SMTP is the one third party faked: Django's
locmem backend takes mail, these stand for a server that is down or refuses a mailbox), and a rival
worker run in the middle of another."""

import smtplib
import threading

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection

DOWN = "tests.outbox.ServerDown"
REFUSES = "tests.outbox.RefusesOneRecipient"


class ServerDown(BaseEmailBackend):
    """An SMTP server nobody answers at."""

    def send_messages(self, messages):
        raise ConnectionRefusedError(111, "Connection refused")


class RefusesOneRecipient(LocmemBackend):
    """A server that refuses one mailbox and takes every other."""

    def send_messages(self, messages):
        for message in messages:
            if "gone@" in message.to[0]:
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"No such user")})
        return super().send_messages(messages)


def rival_once(monkeypatch, owner, name, action):
    """`action` run to its end in another thread, on its own connection, the first time `owner.name`
    is called; then the call goes on."""
    real = getattr(owner, name)
    ran = {}

    def rival():
        try:
            ran["result"] = action()
        finally:
            connection.close()

    def hooked(*args, **kwargs):
        if not ran:
            ran["started"] = True
            thread = threading.Thread(target=rival)
            thread.start()
            thread.join(timeout=30)
            assert not thread.is_alive(), "the rival run never finished"
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, hooked)
    return ran
