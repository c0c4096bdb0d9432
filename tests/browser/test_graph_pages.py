"""Modern networks in real Chromium: the training page builds a residual network from a preset or by adding
blocks, and its shape table shows what each layer reads; the drawing page draws a trained graph's skip
connections and explains a merge's cell as the sum of its inputs' and a BatchNorm cell as its formula."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.api.test_graph_models import GRAPH
from tests.browser.drawing import ONE, draw, open_digits_page

pytestmark = pytest.mark.browser


def test_a_residual_network_from_the_preset_and_a_block_added_by_hand(page, server_url):
    page.goto(server_url + "/train")
    page.wait_for_selector("[data-testid=shape-row]")
    page.get_by_test_id("preset-small-resnet").click()
    add = page.locator("[data-testid=shape-row][data-layer=block1]")
    add.wait_for()
    assert "block1_bn2 + pool" in add.text_content() and "16 × 14 × 14" in add.text_content()
    assert page.get_by_test_id("param-count").text_content() == "19,850"
    page.screenshot(path="test-results/train-small-resnet-1280x720.png")

    page.click("[data-preset=tinyvgg]")
    page.wait_for_selector("[data-testid=shape-row][data-layer=conv4]")
    rows = page.get_by_test_id("layer-row").count()
    page.get_by_test_id("block-type").select_option("separable")
    page.get_by_test_id("block-filters").fill("16")
    page.get_by_test_id("add-block").click()
    page.wait_for_selector("[data-testid=shape-row][data-layer=sep1_pw_bn]")
    assert page.get_by_test_id("layer-row").count() == rows + 6
    depthwise = page.locator("[data-testid=shape-row][data-layer=sep1_dw]").text_content()
    assert "10 × (3·3·1 + 1) = 100" in depthwise  # one 3x3 filter a channel: depthwise
    assert page.get_by_test_id("spec-error").is_hidden()
    assert page.get_by_test_id("train-button").is_enabled()


def trained_graph(server_url: str) -> str:
    token = httpx.post(f"{server_url}/api/workspace", timeout=10).json()["token"]
    client = httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    job = client.post("/api/models", json={"architecture": GRAPH, "train_size": 600, "epochs": 1}).json()
    deadline = time.monotonic() + 120
    while (status := client.get(f"/api/models/{job['id']}").json()["status"]) != "done":
        assert status in ("queued", "running") and time.monotonic() < deadline, status
        time.sleep(0.3)
    return client.post(f"/api/models/{job['id']}/share").json()["share_id"]


def point_at(page, layer: str, fraction: float = 0.45) -> str:
    canvas = page.locator(f'[data-testid=layer][data-layer="{layer}"] .tiles canvas').first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] * fraction)
    detail = page.get_by_test_id("unit-detail")
    page.wait_for_function(
        "(name) => document.querySelector('[data-testid=unit-detail]').textContent.includes(name)", arg=layer
    )
    return detail.inner_text()


def test_a_trained_graph_shows_its_skip_and_explains_a_merge_and_a_batchnorm(page, server_url):
    share = trained_graph(server_url)
    open_digits_page(page, server_url, f"?model={share}")
    draw(page, ONE)
    page.wait_for_selector("[data-testid=network-skip]")
    skip = page.get_by_test_id("network-skip")
    assert skip.count() == 1 and skip.get_attribute("data-from") == "bn1" and skip.get_attribute("data-to") == "add1"
    merge = point_at(page, "add1")
    assert "added number by number" in merge and "bn2 " in merge and "bn1 " in merge
    assert page.get_by_test_id("network-patch").count() == 2  # a cell of each input outlined in the overview
    norm = point_at(page, "bn1")
    assert "γ·(x − μ)/√(σ² + ε) + β" in norm
    page.screenshot(path="test-results/drawing-graph-1280x720.png")
