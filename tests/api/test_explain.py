"""/api/explain and /api/adversarial: exact maps a client can check, bounds in words."""

import numpy as np
import pytest

from engine import load_dataset
from tests.api.conftest import ok

SEVEN = load_dataset("digits", "test")
INDEX = int(np.flatnonzero(SEVEN.labels == 7)[0])
PIXELS = SEVEN.images[INDEX].tolist()


def test_every_method_comes_back_in_the_inputs_shape_with_completeness(client):
    response = client.post("/api/explain", json={"pixels": PIXELS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["target"] == 7 and body["model"] == "lenet" and np.argmax(body["probabilities"]) == 7
    assert np.array(body["input"]).shape == (1, 32, 32)
    for key in ("saliency", "smoothgrad"):
        assert np.array(body[key]).shape == (1, 32, 32) and np.abs(body[key]).max() > 0
    ig = body["integrated_gradients"]
    assert np.array(ig["attribution"]).shape == (1, 32, 32) and ig["baseline"] == "black"
    assert ig["completeness"]["sum"] == pytest.approx(ig["completeness"]["logit_difference"], rel=0.01)
    assert set(body["gradcam"]) == {"conv1", "conv2"}
    assert np.array(body["gradcam"]["conv2"]["map"]).shape == (10, 10)
    assert np.array(body["gradcam"]["conv2"]["upsampled"]).shape == (32, 32)
    assert np.array(body["occlusion"]["map"]).shape == ((32 - 6) // 2 + 1,) * 2


def test_a_chosen_target_and_method_and_a_frame(client):
    frame = np.pad(np.array(PIXELS) / 255, 2).tolist()
    body = ok(client.post("/api/explain", json={"frame": frame, "target": 1, "methods": ["saliency"]}))
    assert body["target"] == 1 and body["smoothgrad"] is None and body["gradcam"] is None
    assert np.array(body["saliency"]).shape == (1, 32, 32)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"pixels": [[0] * 16] * 16}, "the input is empty"),
        ({"pixels": PIXELS, "target": 10}, "this model has classes 0..9"),
        ({"pixels": PIXELS, "methods": ["lime"]}, "methods"),
        ({"pixels": PIXELS, "methods": []}, "methods"),
        ({"pixels": PIXELS, "samples": 1000}, "samples"),
        ({"pixels": PIXELS, "patch": 0}, "patch"),
    ],
)
def test_bad_explain_requests_are_422_in_words(client, body, message):
    response = client.post("/api/explain", json=body)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_pgd_flips_the_digit_within_epsilon(client):
    response = client.post("/api/adversarial", json={"pixels": PIXELS, "method": "pgd", "epsilon": 0.3, "steps": 40})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["original"]["class"] == 7 and body["flipped"] and body["result"]["class"] != 7
    assert body["linf"] <= 0.3 + 1e-6 and body["l2"] > 0
    adversarial, original = np.array(body["adversarial"]), np.array(body["input"])
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    np.testing.assert_allclose(adversarial - original, body["perturbation"], atol=2e-4)
    assert [layer["name"] for layer in body["layers"]] == ["conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3"]
    assert body["layers"][-1]["relative_change"] > body["layers"][0]["relative_change"]  # the change grows


def test_a_targeted_fgsm_and_a_tiny_epsilon_that_fools_nothing(client):
    tiny = ok(client.post("/api/adversarial", json={"pixels": PIXELS, "method": "fgsm", "epsilon": 0.001}))
    assert tiny["steps_taken"] == 1 and not tiny["flipped"] and tiny["result"]["class"] == 7
    targeted = client.post("/api/adversarial", json={"pixels": PIXELS, "epsilon": 0.4, "steps": 60, "target": 3})
    assert targeted.status_code == 200 and targeted.json()["result"]["label"] == "3"
    assert client.post("/api/adversarial", json={"pixels": PIXELS, "epsilon": 2}).status_code == 422
    assert client.post("/api/adversarial", json={"pixels": PIXELS, "steps": 101}).status_code == 422


@pytest.mark.parametrize("samples", [32, 48, 64])
def test_smoothgrad_with_as_many_samples_as_the_schema_allows_answers(client, samples):
    """32 or more noisy copies are split across the cores (it used to be a 500 on every call)."""
    body = {"pixels": PIXELS, "methods": ["smoothgrad"], "samples": samples}
    answer = ok(client.post("/api/explain", json=body))
    assert np.array(answer["smoothgrad"]).shape == (1, 32, 32) and np.abs(answer["smoothgrad"]).max() > 0
