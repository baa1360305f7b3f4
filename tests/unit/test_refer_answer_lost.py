"""livekit-sip's "no answer" to a REFER is taken as accepted only when it cannot be a real one."""

from __future__ import annotations

from livekit.api.twirp_client import ServerError

from agent.call_control import refer_answer_lost

LOST = ServerError(
    "canceled",
    "twirp error unknown: transaction failed to complete (0 intermediate responses)",
    status=408,
)


def test_the_error_livekit_sip_gives_at_once_is_taken_as_accepted() -> None:
    assert refer_answer_lost(LOST, elapsed_s=0.01)


def test_the_same_error_after_sips_timeout_is_a_phone_that_never_answered() -> None:
    assert not refer_answer_lost(LOST, elapsed_s=32.0)


def test_a_refusal_is_a_refusal() -> None:
    refused = ServerError("internal", "SIP REFER failed with code 486", status=500)
    assert not refer_answer_lost(refused, elapsed_s=0.01)
    assert not refer_answer_lost(RuntimeError("transfer refused (SIP 603)"), elapsed_s=0.01)
