"""POST /api/convolve, POST /api/pool, GET /api/arithmetic: the lecture's examples through the API."""

import pytest

from app.schemas import LECTURE_FILTER, LECTURE_IMAGE, LECTURE_POOL_INPUT
from tests.api.conftest import ok


def test_convolve_reproduces_the_lecture_feature_map(client):
    response = client.post("/api/convolve", json={"input": LECTURE_IMAGE, "kernel": LECTURE_FILTER})
    assert response.status_code == 200
    body = response.json()
    assert body["output"] == [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    assert body["output_size"] == [3, 3]
    assert len(body["steps"]) == 9
    first = body["steps"][0]
    assert first["output"] == [0, 0]
    assert first["positions"] == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2], [2, 0], [2, 1], [2, 2]]
    assert first["products"] == [1, 0, 1, 0, 1, 0, 0, 0, 1]  # 1*1 + 1*0 + 1*1 + 0*0 + 1*1 + ...
    assert first["value"] == 4
    last = body["steps"][-1]
    assert last["output"] == [2, 2] and last["positions"][0] == [2, 2]


def test_convolve_with_padding_stride_dilation_and_bias(client):
    body = ok(
        client.post(
            "/api/convolve",
            json={
                "input": [[1] * 7] * 7,
                "kernel": [[1] * 3] * 3,
                "padding": 1,
                "stride": 2,
                "dilation": 2,
                "bias": 0.5,
            },
        )
    )
    assert body["output_size"] == [3, 3]
    assert len(body["padded_input"]) == 9 and body["padded_input"][0] == [0] * 9
    assert body["steps"][0]["positions"][:3] == [[0, 0], [0, 2], [0, 4]]
    assert body["output"][1][1] == 9.5


def test_convolve_channels_sum_over_depth(client):
    body = ok(
        client.post(
            "/api/convolve",
            json={"input": [[[1, 2], [3, 4]], [[10, 20], [30, 40]]], "kernel": [[[1, 0], [0, 0]], [[0, 0], [0, 1]]]},
        )
    )
    assert body["output"] == [[41]]
    assert body["steps"][0]["products"] == [1, 0, 0, 0, 0, 0, 0, 40]


def test_convolve_partial_padding(client):
    body = ok(
        client.post(
            "/api/convolve",
            json={"input": [[9] * 4] * 4, "kernel": [[1 / 9] * 3] * 3, "padding": 1, "padding_mode": "partial"},
        )
    )
    assert body["output"] == [[9] * 4] * 4


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"input": [[1, 2], [3]], "kernel": [[1]]}, 422, "ragged"),
        ({"input": [[1] * 65] * 2, "kernel": [[1]]}, 422, "64x64, got 2x65"),
        ({"input": [[1] * 3] * 3, "kernel": [[1] * 5] * 5}, 422, "larger than the padded input"),
        ({"input": [[1] * 3] * 3, "kernel": [[1]], "stride": 0}, 422, "stride"),
        ({"input": [[1] * 3] * 3, "kernel": [[1]], "padding_mode": "mirror"}, 422, "padding_mode"),
        ({"input": [[[1] * 3] * 3] * 2, "kernel": [[1]]}, 422, "kernel has 1 channels but input has 2"),
        ({"input": [[1] * 3] * 3, "kernel": [[1] * 3] * 3, "padding": 3, "padding_mode": "reflect"}, 422, "reflect"),
        ({"input": "x", "kernel": [[1]]}, 422, "input"),
    ],
)
def test_convolve_bad_input(client, body, status, message):
    response = client.post("/api/convolve", json=body)
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_convolve_step_count_is_bounded(client):
    body = {"input": [[[1] * 64] * 64] * 8, "kernel": [[[1] * 3] * 3] * 8, "padding": 1}
    response = client.post("/api/convolve", json=body)
    assert response.status_code == 413
    assert "include_steps=false" in response.json()["detail"]
    response = client.post("/api/convolve", json={**body, "include_steps": False})
    assert response.status_code == 200 and response.json()["steps"] == []


def test_pool_reproduces_the_lecture_example(client):
    body = ok(client.post("/api/pool", json={"input": LECTURE_POOL_INPUT, "kernel_size": 2, "stride": 2}))
    assert body["output"] == [[6, 8], [3, 4]]
    assert body["steps"][0] == {
        "output": [0, 0],
        "positions": [[0, 0], [0, 1], [1, 0], [1, 1]],
        "values": [1, 1, 5, 6],
        "value": 6,
        "source": [1, 1],
    }


def test_average_pooling(client):
    body = ok(client.post("/api/pool", json={"input": LECTURE_POOL_INPUT, "mode": "avg"}))
    assert body["output"] == [[3.25, 5.25], [2, 2]]
    assert body["steps"][0]["source"] is None


def test_pool_bad_input(client):
    response = client.post("/api/pool", json={"input": [[1, 2], [3, 4]], "kernel_size": 3})
    assert response.status_code == 422
    assert "kernel_size" in response.json()["detail"]
    response = client.post("/api/pool", json={"input": LECTURE_POOL_INPUT, "mode": "median"})
    assert response.status_code == 422


@pytest.mark.parametrize(("stride", "exact", "size", "fits"), [(1, 5, 5, True), (2, 3, 3, True), (3, 2.3333, 2, False)])
def test_arithmetic_of_7x7_with_3x3(client, stride, exact, size, fits):
    body = ok(client.get(f"/api/arithmetic?input_size=7&kernel_size=3&stride={stride}"))
    assert body["exact"] == pytest.approx(exact, abs=1e-4)
    assert body["output_size"] == size and body["fits"] is fits


def test_arithmetic_says_plainly_when_a_stride_does_not_fit(client):
    body = ok(client.get("/api/arithmetic?input_size=7&kernel_size=3&stride=3&padding=0&dilation=1"))
    assert body["formula"] == "(7 + 2*0 - 1*(3-1) - 1)/3 + 1 = 2.33"
    assert body["message"].startswith("a 3x3 filter with stride 3 does not fit a 7x7 input: ")
    assert body["uncovered"] == 1


def test_pooling_advice_never_mentions_padding_which_pooling_here_does_not_have(client):
    conv = ok(client.get("/api/arithmetic?input_size=7&kernel_size=3&stride=3"))
    assert "padding 1" in conv["message"]
    pool = ok(client.get("/api/arithmetic?input_size=7&kernel_size=3&stride=3&operation=max"))
    assert pool["message"].startswith("a 3x3 window with stride 3 does not fit a 7x7 input")
    assert "padding" not in pool["message"].split(":", 1)[1] and "stride 1" in pool["message"]
    too_big = ok(client.get("/api/arithmetic?input_size=3&kernel_size=4&operation=avg"))
    assert too_big["message"].endswith("it does not fit at all; use a smaller window")


def test_arithmetic_padding_dilation_and_parameters(client):
    same = ok(client.get("/api/arithmetic?input_size=7&kernel_size=3&padding=1"))
    assert same["output_size"] == 7 and same["fits"]
    dilated = ok(client.get("/api/arithmetic?input_size=7&kernel_size=3&dilation=2"))
    assert dilated["output_size"] == 3 and dilated["effective_kernel_size"] == 5
    params = ok(client.get("/api/arithmetic?input_size=32&kernel_size=5&padding=2&in_channels=3&filters=10"))
    assert params["parameters"] == 760 and params["output_volume"] == [10, 32, 32]


def test_arithmetic_transposed(client):
    body = ok(client.get("/api/arithmetic?input_size=2&kernel_size=3&stride=2&transposed=true"))
    assert body["output_size"] == 5 and body["fits"] is True
    assert body["formula"] == "(2 - 1)*2 - 2*0 + 1*(3-1) + 1 = 5"


def test_arithmetic_kernel_too_big_is_an_answer_not_an_error(client):
    body = ok(client.get("/api/arithmetic?input_size=3&kernel_size=5"))
    assert body["fits"] is False and body["output_size"] == 0
    assert "does not fit at all" in body["message"]


@pytest.mark.parametrize(
    "query",
    [
        "input_size=0&kernel_size=3",
        "input_size=7&kernel_size=3&stride=0",
        "input_size=7&kernel_size=3&padding=-1",
        "input_size=7",
        "input_size=99999&kernel_size=3",
        "input_size=abc&kernel_size=3",
    ],
)
def test_arithmetic_bad_query(client, query):
    response = client.get(f"/api/arithmetic?{query}")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("query.")


def test_transposed_convolution_scatters_each_input_cell(client):
    body = ok(
        client.post(
            "/api/convolve",
            json={"input": [[1, 2], [3, 4]], "kernel": [[1, 1, 1]] * 3, "stride": 2, "transposed": True},
        )
    )
    assert body["output_size"] == [5, 5]
    assert body["output"][0] == [1, 1, 3, 2, 2]  # the middle column is where cells 1 and 2 overlap
    step = body["steps"][1]
    assert step["input"] == [0, 1] and step["value"] == 2
    assert step["positions"][0] == [0, 2] and step["products"] == [2] * 9


def test_transposed_padding_crops_and_3d_is_refused(client):
    body = ok(
        client.post(
            "/api/convolve",
            json={"input": [[1, 2], [3, 4]], "kernel": [[1] * 3] * 3, "stride": 2, "padding": 1, "transposed": True},
        )
    )
    assert body["output_size"] == [3, 3]
    assert body["steps"][0]["positions"][0] == [-1, -1]
    response = client.post("/api/convolve", json={"input": [[[1]]], "kernel": [[[1]]], "transposed": True})
    assert response.status_code == 422 and "2-D" in response.json()["detail"]


def test_the_api_padding_modes_are_the_engines():
    from app.schemas import PaddingMode
    from engine import PADDING_MODES

    assert set(PaddingMode.__args__) == set(PADDING_MODES)


def test_an_apps_own_settings_bound_its_requests(client, tmp_path):
    """Bounds come from the settings the app was created with, not from the environment at import."""
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app

    grid = [[1] * 10 for _ in range(10)]
    body = {"input": grid, "kernel": [[1, 0], [0, 1]], "stride": 3}
    assert client.post("/api/convolve", json=body).status_code == 200
    with TestClient(create_app(Settings(data_dir=tmp_path, grid_side=8, max_grid_stride=2))) as small:
        too_big = small.post("/api/convolve", json={**body, "stride": 1})
        assert too_big.status_code == 422 and "8" in too_big.json()["detail"]
        too_far = small.post("/api/convolve", json={**body, "input": [row[:6] for row in grid[:6]]})
        assert too_far.status_code == 422 and "less than or equal to 2" in too_far.json()["detail"]
    assert client.post("/api/convolve", json=body).status_code == 200  # the first app keeps its own
