"""Every page of ours, checked by axe-core (from npm, installed by scripts/test.sh; never a CDN) in Chromium,
at a projector's 1280x720 and a phone's 390x844: no serious or critical violation, in the states people
use them in (a digit drawn, the volume mode, a finished model, a data set with examples, a class seen by
its lecturer and by a student). On /docs Swagger UI's own markup is not ours: only our header is checked."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from engine.architectures import ARCHITECTURES
from engine.symbols import draw_symbol
from tests.browser.conftest import RESULTS, watch_console
from tests.browser.drawing import ONE, draw, open_digits_page, wait_for_guess

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"projector": (1280, 720, False), "phone": (390, 844, True)}
RUN_AXE = """async (include) => {
  const result = await axe.run(include ? { include } : document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 4).map((n) => `${n.target.join(" ")} — ${n.failureSummary.split("\\n")[1] ?? ""}`),
  }));
}"""


def serious_violations(page, include: list[str] | None = None) -> list[dict]:
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: scripts/test.sh installs it with npm ci")
    page.evaluate(AXE.read_text())  # through the DevTools protocol: the pages' CSP rightly refuses inline scripts
    found = page.evaluate(RUN_AXE, include)
    return [v for v in found if v["impact"] in ("serious", "critical")]


@pytest.fixture(scope="module")
def prepared(browser, server_url):
    """A workspace with a finished model, a data set with examples, and a class with a student in it."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server_url}/")
    request = page.request
    job = request.post(
        f"{server_url}/api/models", data={"architecture": ARCHITECTURES["tiny"], "train_size": 600}
    ).json()
    deadline = time.monotonic() + 120
    while request.get(f"{server_url}/api/models/{job['id']}").json()["status"] != "done":
        assert time.monotonic() < deadline, "the model did not finish"
        time.sleep(0.3)
    made = request.post(
        f"{server_url}/api/datasets", data={"name": "symbols", "classes": ["check", "cross", "circle"]}
    ).json()
    rng = np.random.default_rng(0)
    examples = [
        {"label": c, "pixels": draw_symbol(c, rng).tolist()} for c in ("check", "cross", "circle") for _ in range(5)
    ]
    assert request.post(f"{server_url}/api/datasets/{made['id']}/images", data={"examples": examples}).ok
    klass = request.post(f"{server_url}/api/classes", data={"name": "MC886"}).json()
    request.put(f"{server_url}/api/classes/{klass['id']}/challenge", data={"max_parameters": 10000})
    cookies = context.cookies()
    yield {"model": job["id"], "dataset": made["id"], "class": klass, "cookies": cookies}
    context.close()


def open_in(browser, size: str, cookies=None):
    width, height, touch = SIZES[size]
    context = browser.new_context(
        viewport={"width": width, "height": height}, has_touch=touch, is_mobile=touch, bypass_csp=False
    )
    if cookies:
        context.add_cookies(cookies)
    return context, watch_console(context.new_page())


def check(page, name: str, size: str, include: list[str] | None = None) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=RESULTS / f"a11y-{name}-{size}.png")
    violations = serious_violations(page, include)
    assert not violations, "\n".join(
        f"{v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in violations
    )


@pytest.mark.parametrize("size", SIZES)
def test_the_drawing_page_blank_and_after_a_drawing(browser, server_url, size):
    context, page = open_in(browser, size)
    open_digits_page(page, server_url)
    check(page, "digits", size)
    page.get_by_test_id("draw-canvas").scroll_into_view_if_needed()
    draw(page, ONE)
    wait_for_guess(page, 1)
    check(page, "digits-drawn", size)
    context.close()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("name", "path", "ready"),
    [
        ("playground", "/playground", "[data-testid=output-image]"),
        ("arithmetic", "/arithmetic", "[data-testid=output-grid]"),
        ("arithmetic-volume", "/arithmetic?mode=volume", "#volume-stage:not([hidden])"),
    ],
)
def test_the_pages_that_need_no_workspace(browser, server_url, size, name, path, ready):
    context, page = open_in(browser, size)
    page.goto(f"{server_url}{path}")
    page.wait_for_selector(ready)
    check(page, name, size)
    context.close()


@pytest.mark.parametrize("size", SIZES)
def test_the_pages_of_a_workspace_with_a_model_a_data_set_and_a_class(browser, server_url, prepared, size):
    context, page = open_in(browser, size, prepared["cookies"])
    page.goto(f"{server_url}/train?model={prepared['model']}")
    page.wait_for_selector("[data-testid=confusion-cell]")
    check(page, "train-finished", size)
    page.goto(f"{server_url}/data?dataset={prepared['dataset']}")
    page.wait_for_selector("[data-testid=example-gallery] img")
    check(page, "data", size)
    page.goto(f"{server_url}/class?class={prepared['class']['id']}")
    page.get_by_test_id("room-counts").wait_for()
    check(page, "class-lecturer", size)
    context.close()
    context, student = open_in(browser, size)
    student.goto(f"{server_url}/class?code={prepared['class']['code']}")
    student.get_by_test_id("join-button").click()
    student.wait_for_url(lambda url: "class=" in url)
    student.get_by_test_id("entry-form").wait_for()
    check(student, "class-student", size)
    context.close()


@pytest.mark.parametrize("size", SIZES)
def test_our_header_on_the_api_docs(browser, server_url, size):
    context, page = open_in(browser, size)
    page.goto(f"{server_url}/docs")
    page.wait_for_selector(".swagger-ui .info")
    check(page, "docs", size, include=[".docs-header"])
    context.close()
