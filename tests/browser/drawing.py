"""Helpers for the drawing page's browser tests: strokes with the mouse, waiting for a guess, reading canvases."""

from __future__ import annotations


def open_digits_page(page, server_url, query=""):
    """The drawing page, once its layer views are built."""
    page.goto(f"{server_url}/{query}")
    page.wait_for_selector("[data-testid=layer]")
    return page


def draw(page, strokes, canvas="draw-canvas"):
    """Draws strokes given in canvas-relative fractions (0..1) with the mouse."""
    box = page.get_by_test_id(canvas).bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        page.mouse.up()


ONE = [[(0.5, 0.15), (0.5, 0.85)]]
ZERO = [
    [
        (0.5, 0.15),
        (0.3, 0.25),
        (0.25, 0.5),
        (0.3, 0.75),
        (0.5, 0.85),
        (0.7, 0.75),
        (0.75, 0.5),
        (0.7, 0.25),
        (0.5, 0.15),
    ]
]


def count_pixels(page, selector, condition):
    """How many pixels of a canvas meet a JavaScript condition on r, g, b."""
    return page.evaluate(
        """([selector, condition]) => {
            const c = document.querySelector(selector);
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const test = new Function('r', 'g', 'b', `return ${condition};`);
            let n = 0;
            for (let k = 0; k < d.length; k += 4) if (test(d[k], d[k + 1], d[k + 2])) n++;
            return n;
        }""",
        [selector, condition],
    )


def wait_for_guess(page, digit):
    page.wait_for_function(
        "d => document.querySelector('[data-testid=prediction]').textContent.trim() === d",
        arg=str(digit),
        timeout=10_000,
    )


def load_sample(page, digit, touch=False):
    """One click (or tap) on a sample MNIST digit, and its guess."""
    button = page.locator(f"[data-testid=sample-digit][data-digit='{digit}']")
    if touch:
        button.tap()
    else:
        button.click()
    wait_for_guess(page, digit)
