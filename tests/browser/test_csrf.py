"""Cross-site request forgery from the same site: a page on the same host at another port (as a sibling
subdomain would be) gets the workspace cookie on every request it makes to the app, SameSite=Lax
notwithstanding. Its form posts and no-cors fetches are refused, and nothing in the workspace changes."""

from __future__ import annotations

import functools
import http.server
import threading

import httpx
import pytest

from tests.browser.test_class_room import trained_by_api
from tests.conftest import free_port

pytestmark = pytest.mark.browser

FORGERY = """<!doctype html><meta charset="utf-8"><title>free prizes</title>
<form id="copy" method="post" action="{app}/api/models/{model}/copy"></form>
<script>
  const app = "{app}";
  const sent = [
    fetch(`${{app}}/api/models/{model}/cancel`, {{ method: "POST", mode: "no-cors", credentials: "include" }}),
    fetch(`${{app}}/api/datasets/{dataset}`, {{ method: "DELETE", mode: "no-cors", credentials: "include" }}),
    fetch(`${{app}}/api/datasets`, {{
      method: "POST", mode: "no-cors", credentials: "include",
      body: new Blob([JSON.stringify({{ name: "planted", classes: ["a", "b"] }})], {{ type: "text/plain" }}),
    }}),
  ];
  Promise.allSettled(sent).then(() => {{ document.title = "sent"; document.getElementById("copy").submit(); }});
</script>"""


@pytest.fixture
def other_port_site(tmp_path):
    """A static web server on the same host at another port: the forger's page."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_page_at_another_port_cannot_act_in_the_visitors_workspace(browser, server_url, other_port_site):
    folder, site = other_port_site
    context = browser.new_context()
    try:
        victim = context.new_page()
        victim.goto(f"{server_url}/train")  # the first visit gives the browser its workspace cookie
        cookie = next(c for c in context.cookies() if c["name"].startswith("convscope"))
        mine = httpx.Client(base_url=server_url, cookies={cookie["name"]: cookie["value"]}, timeout=30)
        model = trained_by_api(mine)
        dataset = mine.post("/api/datasets", json={"name": "kept", "classes": ["a", "b"]}).json()["id"]

        (folder / "prize.html").write_text(FORGERY.format(app=server_url, model=model, dataset=dataset))
        forger = context.new_page()
        forger.goto(f"{site}/prize.html")
        forger.wait_for_url(lambda url: "/copy" in url)  # the form's post, sent after the fetches were answered
        forger.wait_for_load_state()
        assert "not from this server's own pages" in forger.content()  # the form's answer: the 403's words

        models = [m for m in mine.get("/api/models").json() if m["group"] == "yours"]
        assert [m["id"] for m in models] == [model] and models[0]["status"] == "done"
        assert [d["name"] for d in mine.get("/api/datasets").json()["datasets"]] == ["kept"]
    finally:
        context.close()
