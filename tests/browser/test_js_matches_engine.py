"""The pages' arithmetic in JavaScript against the engine's, case by case in real Chromium (in the style of
tinygrad's helper_test_op): each table of cases is run through the JS function and the Python one, and
every answer must agree. This replaces grepping the scripts for a formula's text."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine._checks import output_size
from engine.filters import apply_kernel, same_padding
from engine.network import build_network
from engine.padding import PADDING_MODES, pad2d
from engine.spec import plan_network, receptive_fields

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def js(browser, server_url):
    """Runs ``(modules) => ...`` with the named static/js modules imported in a page of the app."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(server_url + "/arithmetic")

    def run(modules: list[str], body: str, arg=None):
        imports = ", ".join(f"await import('/static/js/{m}.js')" for m in modules)
        return page.evaluate(f"async (arg) => {{ const m = [{imports}]; return ({body})(m, arg); }}", arg)

    yield run
    context.close()


def test_output_size_agrees_over_a_grid_of_sizes(js):
    cases = [
        c
        for c in itertools.product(range(1, 13), range(1, 6), range(1, 4), range(0, 3), range(1, 3))
        if c[0] + 2 * c[3] >= c[4] * (c[1] - 1) + 1  # the window fits
    ]
    got = js(["kernels"], "([k], cases) => cases.map(([n, f, s, p, d]) => k.outputSize(n, f, s, p, d))", cases)
    assert got == [output_size(n, f, s, p, d) for n, f, s, p, d in cases] and len(cases) > 500


def test_same_padding_agrees(js):
    cases = list(itertools.product(range(1, 16), range(1, 5)))
    got = js(["kernels"], "([k], cases) => cases.map(([f, d]) => k.samePadding(f, d))", cases)
    assert got == [same_padding(f, d) for f, d in cases]


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_every_padding_mode_reads_the_same_source_pixel(js, mode):
    """pad2d of 1..n shows which input each padded index reads (0: a zero), for sizes 2..7 and padding up to n."""
    cases, expected = [], []
    for n in range(2, 8):
        most = n - 1 if mode == "reflect" else n
        padded = pad2d(np.arange(1, n + 1, dtype=np.float64)[None, None, None, :], (0, most), mode)[0, 0, 0]
        for i in range(-most, n + most):
            cases.append([i, n])
            value = int(padded[i + most])
            expected.append(None if value == 0 else value - 1)
    got = js(["kernels"], f"([k], cases) => cases.map(([i, n]) => k.sourceIndex(i, n, '{mode}'))", cases)
    assert got == expected


@pytest.mark.parametrize(
    ("mode", "stride", "dilation", "output"),
    [(m, 1, 1, "clip") for m in PADDING_MODES]
    + [("reflect", 2, 1, "abs"), ("zeros", 1, 2, "rescale"), ("partial", 2, 2, "abs"), ("zeros", 1, 1, "stretch")],
)
def test_the_live_filter_makes_the_servers_picture(js, mode, stride, dilation, output):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (9, 11, 3)).astype(np.uint8)
    kernel = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]] if output != "rescale" else [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    rgba = np.concatenate([rgb, np.full((9, 11, 1), 255, np.uint8)], axis=2)
    got = js(
        ["kernels"],
        """([k], a) => {
            const image = new ImageData(new Uint8ClampedArray(a.data), a.width, a.height);
            const out = k.filterImage(image, a.kernel, a.options);
            return { width: out.width, height: out.height, data: Array.from(out.data) };
        }""",
        {
            "data": rgba.ravel().tolist(),
            "width": 11,
            "height": 9,
            "kernel": kernel,
            "options": {"stride": stride, "dilation": dilation, "mode": mode, "output": output},
        },
    )
    expected = apply_kernel(rgb, np.array(kernel, float), mode, stride, dilation, output)
    picture = np.array(got["data"], np.uint8).reshape(got["height"], got["width"], 4)[..., :3]
    assert picture.shape == expected.shape
    # the sums are exact integers here; only a value at exactly .5 could round differently
    assert np.abs(picture.astype(int) - expected.astype(int)).max() <= 1
    assert (picture == expected).mean() > 0.99


SPECS = [
    {"input": [1, 32, 32], "classes": 10, "layers": [
        {"type": "conv", "filters": 2, "kernel_size": 5}, {"type": "maxpool", "kernel_size": 2},
        {"type": "conv", "filters": 2, "kernel_size": 3, "padding": 1, "dilation": 2},
        {"type": "maxpool", "kernel_size": 3, "stride": 2}, {"type": "flatten"}, {"type": "linear", "units": 10}]},
    {"input": [1, 20, 24], "classes": 3, "layers": [
        {"type": "conv", "filters": 2, "kernel_size": [3, 5], "stride": [2, 1], "padding": [1, 2]},
        {"type": "avgpool", "kernel_size": 2}, {"type": "conv", "filters": 2, "kernel_size": 2, "stride": 2},
        {"type": "flatten"}, {"type": "linear", "units": 3}]},
]  # fmt: skip


@pytest.mark.parametrize("spec", SPECS, ids=["dilated", "rectangular"])
def test_one_layer_windows_compose_into_the_engines_receptive_fields(js, spec):
    """Walking windowSpan back from a unit to the input lands on the engine's field for that unit."""
    plans = plan_network(spec)
    layers = build_network(spec).describe()
    fields = receptive_fields(plans, spec["input"])
    got = js(
        ["network"],
        """([n], layers) => {
            const geometry = n.geometry(layers).filter((l) => l.kind !== 'fc');
            const out = {};
            for (const layer of geometry) {
                const [oh, ow] = layer.shape.slice(1);
                out[layer.name] = [];
                for (const [row, col] of [[0, 0], [oh - 1, ow - 1], [Math.floor(oh / 2), 1 % ow]]) {
                    let span = [row, col, row + 1, col + 1];
                    for (let at = layer; at; at = geometry.find((l) => l.name === at.from)) {
                        const [a, b] = n.windowSpan(at, span[0], span[1]);
                        const [c, d] = n.windowSpan(at, span[2] - 1, span[3] - 1).slice(2);
                        span = [a, b, c, d];
                    }
                    out[layer.name].push({ unit: [row, col], walked: span, api: n.inputField(layer, row, col) });
                }
            }
            return out;
        }""",
        layers,
    )
    for name, units in got.items():
        field = fields[name]
        for unit in units:
            i, j = unit["unit"]
            y0, x0 = field.start[0] + i * field.step[0], field.start[1] + j * field.step[1]
            expected = [y0, x0, y0 + field.size[0], x0 + field.size[1]]
            assert unit["walked"] == expected and unit["api"] == expected, (name, unit)


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_a_units_worked_sum_is_the_engines_output(js, mode):
    """windowOf + weightedSum (the drawing page's explanation of a cell) against the engine's conv layer."""
    spec = {"input": [2, 7, 6], "classes": 2, "layers": [
        {"type": "conv", "filters": 1, "kernel_size": 3, "padding": 1, "stride": 2, "padding_mode": mode},
        {"type": "flatten"}, {"type": "linear", "units": 2}]}  # fmt: skip
    network = build_network(spec, seed=4)
    network.params = {k: v.astype(np.float64) for k, v in network.params.items()}
    x = np.random.default_rng(5).normal(size=(1, 2, 7, 6))
    expected = network.activations(x)["conv1"][0, 0]
    got = js(
        ["network"],
        """([n], a) => {
            const layer = n.geometry(a.layers)[0];
            const sum = ([r, c]) => n.weightedSum(n.windowOf(layer, a.maps, r, c), a.weights, a.bias, layer.mode);
            return a.cells.map((cell) => sum(cell).total);
        }""",
        {
            "layers": network.describe(),
            "maps": x[0].tolist(),
            "weights": network.params["conv1.weight"][0].tolist(),
            "bias": float(network.params["conv1.bias"][0]),
            "cells": [[r, c] for r in range(expected.shape[0]) for c in range(expected.shape[1])],
        },
    )
    np.testing.assert_allclose(np.array(got).reshape(expected.shape), expected, rtol=1e-9, atol=1e-9)
