"""Attempts: each one claimed before its first leg is originated, so nobody is rung twice."""

from click2call.models import CallRequest


def attempt_dial_next(*, request_id: int):
    """Claim the request's next automatic try and originate its first party."""
    raise NotImplementedError(f"dialing of request {request_id} is being built (issue 17)")


__all__ = ["CallRequest", "attempt_dial_next"]
