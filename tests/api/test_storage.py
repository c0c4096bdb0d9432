"""What the server keeps is bounded: each workspace's models and data sets' pictures (429 past its cap),
what one address's free workspaces keep together and what the whole store keeps (507 past theirs, naming
the figures); every write and delete is counted, and an imported model is no larger than a trained one."""

from __future__ import annotations

import base64
import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.main import create_app
from tests.api.conftest import browser, ok
from tests.api.test_own_data import drawn, zipped
from tests.onnx_files import Builder

MIB = 1024 * 1024


def sizeable_cnn() -> bytes:
    """An ONNX classifier of 63,050 parameters: about 250 KB kept, four of them a megabyte."""
    b = Builder((1, 16, 16))
    b.conv(32, 3, channels=1)
    b.op("Relu")
    b.op("Flatten", axis=1)
    b.gemm(10, 32 * 14 * 14)
    return b.bytes()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def server(tmp_path, **limits) -> TestClient:
    app = create_app(Settings(data_dir=tmp_path, **limits))
    TestClient(app).__enter__()  # the lifespan runs: the store is open
    return app


def stored(app, address: str = "testclient") -> tuple[int, int]:
    return app.state.store.stored_bytes(address)


def symbols(client: TestClient, per_class: int = 10) -> dict:
    made = ok(client.post("/api/datasets", json={"name": "marks", "classes": ["check", "cross", "circle"]}), 201)
    return ok(client.post(f"/api/datasets/{made['id']}/images", json={"examples": drawn(per_class)}))


def test_a_data_sets_pictures_count_in_its_workspace_its_address_and_the_store(tmp_path):
    app = server(tmp_path)
    me = browser(app)
    added = symbols(me)
    held = ok(me.get("/api/workspace"))["bytes"]
    assert held > 0  # it was 0 however many pictures a data set held
    assert stored(app) == (held, held)
    me.delete(f"/api/datasets/{added['id']}")
    assert ok(me.get("/api/workspace"))["bytes"] == 0 and stored(app) == (0, 0)


def test_an_addresss_free_workspaces_share_one_bound_and_the_refusal_is_507_with_the_figures(tmp_path):
    app = server(tmp_path, max_bytes_per_address=MIB)
    kept, refusal = 0, None
    for _ in range(40):  # one fresh workspace after another, as a script minting them would
        answer = browser(app).post("/api/models/import", files={"file": ("m.onnx", sizeable_cnn())})
        if answer.status_code != 201:
            refusal = answer
            break
        kept += 1
    assert refusal is not None and refusal.status_code == 507, refusal and refusal.text
    assert "the workspaces made from your address store" in refusal.json()["detail"]
    assert "one address may keep 1 MB" in refusal.json()["detail"]
    mine, _ = stored(app)
    assert kept > 0 and mine <= MIB
    # pictures too: a data set of a new workspace from that address finds no room for 90 noisy photos
    me = browser(app)
    made = ok(me.post("/api/datasets", json={"name": "noise", "classes": ["red", "blue"], "kind": "picture"}), 201)
    photos = [{"label": k % 2, "image": data_url(p)} for k, p in enumerate(noise_folder(45).values())]
    crowded = me.post(f"/api/datasets/{made['id']}/images", json={"examples": photos})
    assert crowded.status_code == 507 and "one address may keep" in crowded.json()["detail"]
    assert ok(me.get(f"/api/datasets/{made['id']}"))["examples"] == []


def test_the_whole_store_has_a_bound_too(tmp_path):
    app = server(tmp_path, max_store_bytes=MIB)
    refusal = None
    for _ in range(40):
        answer = browser(app).post("/api/models/import", files={"file": ("m.onnx", sizeable_cnn())})
        if answer.status_code != 201:
            refusal = answer
            break
    assert refusal is not None and refusal.status_code == 507
    assert "the server's store holds" in refusal.json()["detail"] and "its cap is 1 MB" in refusal.json()["detail"]
    assert stored(app)[1] <= MIB


def noise_folder(per_class: int) -> dict[str, bytes]:
    """Two classes of 32x32 colour noise: pictures that do not compress (3 KB each, kept)."""
    rng = np.random.default_rng(0)
    entries = {}
    for label in ("red", "blue"):
        for k in range(per_class):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, format="PNG")
            entries[f"photos/{label}/{k}.png"] = buffer.getvalue()
    return entries


def test_a_zip_with_no_room_for_its_pictures_leaves_no_empty_data_set(tmp_path):
    app = server(tmp_path, max_bytes_per_address=MIB)
    hog = browser(app)
    while hog.post("/api/models/import", files={"file": ("m.onnx", sizeable_cnn())}).status_code == 201:
        hog = browser(app)
    me = browser(app)
    refused = me.post("/api/datasets/import", files={"file": ("p.zip", zipped(noise_folder(60)))})
    assert refused.status_code == 507, refused.text
    assert ok(me.get("/api/datasets"))["datasets"] == []


def test_an_imported_model_is_no_larger_than_the_imports_cap(tmp_path):
    app = server(tmp_path, import_max_parameters=1000)
    b = Builder((1, 8, 8))
    b.conv(16, 3, channels=1)
    b.op("Flatten", axis=1)
    b.gemm(10, 16 * 6 * 6)
    answer = browser(app).post("/api/models/import", files={"file": ("big.onnx", b.bytes())})
    assert answer.status_code == 422
    assert "5,930 parameters, more than the 1,000 an imported model may have here" in answer.json()["detail"]


def test_trained_and_deleted_models_are_counted_as_they_come_and_go(tmp_path):
    from app.jobs.worker import housekeeping, run_jobs
    from engine.architectures import ARCHITECTURES

    app = server(tmp_path)
    me = browser(app)
    job = ok(me.post("/api/models", json={"architecture": ARCHITECTURES["tiny"], "train_size": 600}), 202)
    run_jobs(app.state.settings, app.state.store)
    held = ok(me.get(f"/api/models/{job['id']}"))["bytes"]
    assert held > 0 and stored(app) == (held, held)
    app.state.store.update(job["id"], finished=1.0)  # long ago: past its time to live
    housekeeping(app.state.settings, app.state.store)
    assert stored(app) == (0, 0)
