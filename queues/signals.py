"""What queues tells other apps, without knowing them: an app that sent a caller to a queue (the
Member's source_app and source_ref) connects a receiver here and recognises its own calls.

queue_call_disposed
    The agent (or a supervisor) set, or changed, the disposition of a call the agent answered, after
    the call. Sent once that write has committed (a rolled-back write is never announced), by
    queues.services.dispositions.offer_disposition_set, with `sender=queues.models.Offer` and these
    keyword arguments:

    source_app   str       the app that sent the caller ("callcards"); "" for a caller of the queue's own
    source_ref   str       that app's reference of the call (a CardCall's id); "" when none
    agent        str       the agent's full name, name@company-slug
    disposition  str       what was set: one line, at most 40 characters, starting with a letter or digit
    at           datetime  when it was set (aware)
    company_id   int       the queue's company: a receiver checks its own row belongs to it
    offer_id     int       the queues.Offer (the agent's answered leg)

    Receivers are called with send_robust: one that raises is logged and does not stop the others.
    Filter on source_app first; every disposition of every queue is sent.
"""

from django.dispatch import Signal

queue_call_disposed = Signal()
