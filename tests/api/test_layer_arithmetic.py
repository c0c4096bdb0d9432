"""/api/arithmetic with rectangular sizes and groups agrees with PyTorch, and writes the PyTorch line;
/api/convolve makes a whole output volume, cs231n's demo among them."""

import numpy as np
import pytest

from tests.api.conftest import ok

# Computed offline with torch 2.13.0 (CPU): nn.Conv2d(in, out, kernel, stride, padding, dilation, groups=g)
# applied to torch.zeros(1, in, H, W); the shape of its output and sum(p.numel() for p in m.parameters()).
PYTORCH_CASES = [
    # (H, W), in, out, kernel, stride, padding, dilation, groups -> output (N, C, H, W), parameters
    ((32, 32), 3, 10, 5, 1, 2, 1, 1, (1, 10, 32, 32), 760),
    ((28, 20), 4, 8, (3, 5), (1, 2), (1, 0), 1, 4, (1, 8, 28, 8), 128),
    ((17, 9), 6, 12, (5, 3), 2, (2, 1), (1, 2), 3, (1, 12, 9, 4), 372),
    ((7, 7), 1, 1, 3, 3, 0, 1, 1, (1, 1, 2, 2), 10),
    ((64, 48), 8, 8, 3, 1, 1, 2, 8, (1, 8, 62, 46), 80),
    ((10, 30), 2, 6, (1, 7), (1, 3), (0, 3), 1, 2, (1, 6, 10, 10), 48),
]


def pair(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize("case", PYTORCH_CASES)
def test_shapes_and_parameter_counts_match_pytorch(client, case):
    size, cin, cout, kernel, stride, padding, dilation, groups, torch_shape, torch_params = case
    query = (
        f"input_size={pair(size)}&kernel_size={pair(kernel)}&stride={pair(stride)}&padding={pair(padding)}"
        f"&dilation={pair(dilation)}&in_channels={cin}&filters={cout}&groups={groups}"
    )
    body = ok(client.get(f"/api/arithmetic?{query}"))
    assert [cout, *body["output_shape"]] == list(torch_shape[1:])
    assert body["parameters"] == torch_params
    assert body["pytorch_output"] == f"(N, {', '.join(map(str, torch_shape[1:]))})"


def test_the_pytorch_line_for_a_few_layers(client):
    conv = ok(client.get("/api/arithmetic?input_size=32&kernel_size=5&padding=2&in_channels=3&filters=10"))
    assert conv["pytorch"] == "nn.Conv2d(3, 10, kernel_size=5, stride=1, padding=2)"
    assert conv["parameter_formula"] == "10 × (5·5·3 + 1) = 760"
    pool = ok(client.get("/api/arithmetic?input_size=4&kernel_size=2&stride=2&operation=max&in_channels=3"))
    assert pool["pytorch"] == "nn.MaxPool2d(kernel_size=2, stride=2)" and pool["parameters"] == 0
    rect = ok(
        client.get("/api/arithmetic?input_size=28,20&kernel_size=3,5&stride=1,2&in_channels=4&filters=8&groups=4")
    )
    assert rect["pytorch"] == "nn.Conv2d(4, 8, kernel_size=(3, 5), stride=(1, 2), padding=0, groups=4)"
    assert rect["height"]["formula"] == "(28 + 2*0 - 1*(3-1) - 1)/1 + 1 = 26"
    assert rect["width"]["output_size"] == 8 and rect["fits"] is False  # (20 - 5)/2 + 1 = 8.5
    transposed = ok(
        client.get("/api/arithmetic?input_size=2&kernel_size=3&stride=2&transposed=true&in_channels=1&filters=1")
    )
    assert transposed["pytorch"] == "nn.ConvTranspose2d(1, 1, kernel_size=3, stride=2, padding=0)"
    assert transposed["output_shape"] == [5, 5]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("input_size=8&kernel_size=3&in_channels=3&filters=4&groups=2", "groups: 2 must divide both"),
        ("input_size=8&kernel_size=3,3,3", "query.kernel_size"),
        ("input_size=8,0&kernel_size=3", "query.input_size: each value must be from 1 to 4096"),
    ],
)
def test_bad_groups_and_pairs_are_422(client, query, message):
    response = client.get(f"/api/arithmetic?{query}")
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_a_volume_of_two_filters_over_three_channels_is_cs231ns_demo(client):
    rng = np.random.default_rng(0)
    x, w, bias = rng.integers(0, 3, (3, 5, 5)), rng.integers(-1, 2, (2, 3, 3, 3)), [1, 0]
    body = ok(
        client.post(
            "/api/convolve", json={"input": x.tolist(), "kernel": w.tolist(), "bias": bias, "stride": 2, "padding": 1}
        )
    )
    assert body["output_size"] == [2, 3, 3] and len(body["steps"]) == 18
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    for step in body["steps"]:
        f, (i, j) = step["filter"], step["output"]
        window = padded[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3]
        sums = (window * w[f]).sum(axis=(1, 2))  # w·x over each channel's 3x3 window
        assert step["channel_sums"] == sums.tolist()
        assert step["value"] == sums.sum() + bias[f] == body["output"][f][i][j]
    assert [s["filter"] for s in body["steps"]] == [0] * 9 + [1] * 9  # filter by filter


def test_a_large_volume_is_listed_a_window_of_steps_at_a_time(client):
    x = np.ones((3, 32, 32)).tolist()
    w = np.ones((6, 3, 5, 5)).tolist()
    body = ok(client.post("/api/convolve", json={"input": x, "kernel": w, "first_step": 784, "step_count": 10}))
    assert body["output_size"] == [6, 28, 28] and len(body["steps"]) == 10
    assert body["steps"][0]["filter"] == 1 and body["steps"][0]["output"] == [0, 0]
    assert body["steps"][0]["value"] == 75
    whole = client.post("/api/convolve", json={"input": x, "kernel": w})
    assert whole.status_code == 413 and "step" in whole.json()["detail"]
