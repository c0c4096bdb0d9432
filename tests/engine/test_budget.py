"""A request's time budget, and its gate: a request is stored or told 503, never both."""

from __future__ import annotations

import contextvars

import pytest

from engine import budget
from engine.budget import Gate, OutOfTime


def test_the_server_expiring_first_refuses_the_works_commit():
    gate = Gate()
    assert gate.expire() is True
    with pytest.raises(OutOfTime, match="nothing was stored"):
        gate.commit()


def test_the_work_committing_first_means_the_server_waits_for_its_answer():
    gate = Gate()
    gate.commit()
    gate.commit()  # a second write of the same request is still that request's
    assert gate.expire() is False and gate.state == "committed"


def test_an_expired_gate_stops_the_work_at_its_next_check_and_only_in_its_own_context():
    def request() -> Gate:
        gate = budget.open_gate()
        budget.check_time()
        return gate

    gate = contextvars.copy_context().run(request)
    gate.expire()
    budget.check_time()  # another context (another request, the tests) runs on
    with pytest.raises(OutOfTime):
        contextvars.copy_context().run(lambda: (budget._gate.set(gate), budget.check_time()))
    budget.commit()  # outside a request: nothing to commit
