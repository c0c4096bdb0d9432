"""Helper processes (engine.processes): a training step's slices computed in other processes give the
step the threads give, and a helper that dies, stalls or fails loses nothing."""

import json
import os
import signal
import socket
import threading
from multiprocessing.connection import Connection

import numpy as np
import pytest

import engine.network
import engine.stepping
from engine import build_network, processes
from engine import helper as helper_side
from engine.architectures import architecture

BATCH = 64  # above PARALLEL_MIN_TRAIN_BATCH: the step is split in two


@pytest.fixture
def two_cores(monkeypatch):
    """The step splits in two whatever the machine, and every test starts and ends without helpers."""
    monkeypatch.setattr(engine.network, "available_cores", lambda: 2)
    processes.shut_down()
    yield
    processes.use_helper_processes(True)
    processes.shut_down()


def _batch(network, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((BATCH, *network.input_shape), dtype=np.float32)
    return x, rng.integers(0, network.classes, BATCH)


def _step_on_threads(network, x, labels, seed=None):
    processes.use_helper_processes(False)
    try:
        rng = None if seed is None else np.random.default_rng(seed)
        return network.loss_and_gradients(x, labels, dropout_rng=rng)
    finally:
        processes.use_helper_processes(True)


def _assert_same_step(got, expected):
    assert got[0] == pytest.approx(expected[0], rel=1e-5)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-4, atol=1e-5)
    assert got[2].keys() == expected[2].keys()
    for key in expected[2]:
        np.testing.assert_allclose(got[2][key], expected[2][key], rtol=1e-4, atol=1e-6, err_msg=key)


def _helper_steps(monkeypatch):
    """Counts the steps that went to the helpers."""
    calls = []
    original = engine.stepping._with_helpers

    def counted(network, x, labels, rngs, helpers, frozen):
        calls.append(len(helpers))
        return original(network, x, labels, rngs, helpers, frozen)

    monkeypatch.setattr(engine.stepping, "_with_helpers", counted)
    return calls


def test_a_step_split_with_a_helper_process_is_the_step_split_on_threads(two_cores, monkeypatch):
    network = build_network(architecture("lenet"))  # LeNet has dropout: each slice keeps its stream
    other = build_network(architecture("tinyvgg"), seed=1)
    (x, labels), (x2, labels2) = _batch(network), _batch(other, seed=1)
    expected = _step_on_threads(network, x, labels, seed=7), _step_on_threads(other, x2, labels2, seed=3)
    assert processes.wait_until_ready(1)
    used = _helper_steps(monkeypatch)
    _assert_same_step(network.loss_and_gradients(x, labels, dropout_rng=np.random.default_rng(7)), expected[0])
    # the helper keeps the last spec; a second network in the same process is sent its own
    _assert_same_step(other.loss_and_gradients(x2, labels2, dropout_rng=np.random.default_rng(3)), expected[1])
    assert used == [1, 1]


def test_a_fine_tuning_step_on_a_helper_returns_the_trained_layers_gradients_alone(two_cores, monkeypatch):
    network = build_network(architecture("lenet"))
    x, labels = _batch(network)
    frozen = ("conv1", "conv2")
    processes.use_helper_processes(False)
    expected = network.loss_and_gradients(x, labels, dropout_rng=np.random.default_rng(2), frozen=frozen)
    processes.use_helper_processes(True)
    assert processes.wait_until_ready(1)
    used = _helper_steps(monkeypatch)
    got = network.loss_and_gradients(x, labels, dropout_rng=np.random.default_rng(2), frozen=frozen)
    assert used == [1] and sorted(got[2]) == [
        "fc1.bias",
        "fc1.weight",
        "fc2.bias",
        "fc2.weight",
        "fc3.bias",
        "fc3.weight",
    ]
    _assert_same_step(got, expected)


def test_a_helper_killed_during_a_step_loses_nothing_and_is_replaced(two_cores, monkeypatch):
    network = build_network(architecture("lenet"))
    x, labels = _batch(network)
    expected = _step_on_threads(network, x, labels, seed=5)
    assert processes.wait_until_ready(1)
    original = processes.Helper.submit
    killed = []

    def submit_then_kill(self, *args):
        original(self, *args)
        killed.append(self.process.pid)
        os.kill(self.process.pid, signal.SIGKILL)

    monkeypatch.setattr(processes.Helper, "submit", submit_then_kill)
    got = network.loss_and_gradients(x, labels, dropout_rng=np.random.default_rng(5))
    monkeypatch.setattr(processes.Helper, "submit", original)
    assert killed
    assert processes.wait_until_ready(1)  # a new helper is started for the next steps
    with processes.borrowed(1) as helpers:
        assert [helper.process.pid for helper in helpers] != killed
    _assert_same_step(got, expected)


def test_a_silent_helper_is_stopped_and_its_slice_computed_here(two_cores, monkeypatch):
    network = build_network(architecture("tiny"))
    x, labels = _batch(network)
    expected = _step_on_threads(network, x, labels)
    assert processes.wait_until_ready(1)
    monkeypatch.setattr(processes, "SILENCE_SECONDS", 0.2)
    monkeypatch.setattr(processes, "SILENCE_FACTOR", 0)
    original = processes.Helper.submit
    paused = []

    def submit_then_pause(self, *args):
        original(self, *args)
        paused.append(self)
        os.kill(self.process.pid, signal.SIGSTOP)

    monkeypatch.setattr(processes.Helper, "submit", submit_then_pause)
    _assert_same_step(network.loss_and_gradients(x, labels), expected)
    assert not paused[0].alive and paused[0].process.poll() is not None  # stopped, not left hanging


def test_a_helper_that_cannot_compute_its_slice_answers_why_and_the_caller_computes_it(two_cores, monkeypatch):
    network = build_network(architecture("tiny"))
    x, labels = _batch(network)
    expected = _step_on_threads(network, x, labels)
    assert processes.wait_until_ready(1)
    used = _helper_steps(monkeypatch)
    with processes.borrowed(1) as helpers:
        helpers[0].spec_sent = json.dumps(network.spec)  # as if sent: the helper has never had it
    _assert_same_step(network.loss_and_gradients(x, labels), expected)
    # the helper lives on and, sent the spec next time, takes its slices again
    with processes.borrowed(1) as helpers:
        assert helpers and helpers[0].alive
        helpers[0].spec_sent = None
    _assert_same_step(network.loss_and_gradients(x, labels), expected)
    assert used == [1, 1]


def test_the_helper_loop_answers_an_error_in_words_and_goes_on():
    ours, theirs = socket.socketpair()
    caller, helper = Connection(ours.detach()), Connection(theirs.detach())
    memory = processes.SharedBlock()
    loop = threading.Thread(target=helper_side.serve, args=(helper, memory))
    loop.start()
    assert caller.recv() == "ready"
    caller.send((None, 0, None, frozenset(), None))  # a slice with neither layout nor spec
    kind, detail = caller.recv()
    assert kind == "error" and "layout" in detail
    caller.close()  # the caller is gone: the loop ends
    loop.join(timeout=5)
    assert not loop.is_alive()
    memory.close()


def test_switched_off_or_for_float64_no_helper_is_started(two_cores, monkeypatch):
    network = build_network(architecture("tiny"))
    x, labels = _batch(network)
    used = _helper_steps(monkeypatch)
    processes.use_helper_processes(False)
    network.loss_and_gradients(x, labels)
    assert not processes._pool.helpers
    processes.use_helper_processes(True)
    assert processes.wait_until_ready(1)
    network.loss_and_gradients(x.astype(np.float64), labels)  # the shared block holds float32 only
    assert used == []


def test_the_layout_places_every_array_apart_and_aligned():
    network = build_network(architecture("lenet"))
    layout = processes.plan_layout(network.params, (32, 1, 32, 32), 10)
    places = [*layout.params.values(), *layout.grads.values(), layout.x, layout.labels, layout.logits]
    spans = sorted((p.offset, p.end) for p in places)
    assert all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:]))
    assert all(p.offset % processes.ALIGN == 0 for p in places)
    assert layout.logits.shape == (32, 10) and layout.labels.dtype == "int64"
    assert processes.plan_layout(network.params, (32, 1, 32, 32), 10) is layout  # sent once, then kept
