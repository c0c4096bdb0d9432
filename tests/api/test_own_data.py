"""Your own data, through the API: a data set of named classes filled with drawn examples, a split fixed as
they arrive, ImageFolder zips (and the hostile ones refused), and a LeNet fine-tuned on it that then works
on every route with its own class names."""

from __future__ import annotations

import base64
import io
import stat
import threading
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.jobs.worker import run_jobs
from app.main import create_app
from app.services import datasets as own_data
from engine.architectures import ARCHITECTURES
from engine.symbols import draw_symbol
from tests.api.conftest import browser, ok

CLASSES = ["check", "cross", "circle"]


@pytest.fixture()
def app(tmp_path):
    settings = Settings(
        data_dir=tmp_path, max_dataset_examples=60, dataset_batch_examples=40, dataset_zip_max_bytes=200_000
    )
    application = create_app(settings)
    with TestClient(application):
        yield application


def data_url(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def drawn(per_class: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"label": c, "image": data_url(draw_symbol(c, rng))} for c in CLASSES for _ in range(per_class)]


@pytest.fixture()
def symbols(app):
    me = browser(app)
    made = ok(me.post("/api/datasets", json={"name": "symbols", "classes": CLASSES, "kind": "digit"}), 201)
    ok(me.post(f"/api/datasets/{made['id']}/images", json={"examples": drawn(10)}))
    return me, made["id"]


def test_examples_are_prepared_as_digits_and_a_fifth_of_each_class_is_held_out(symbols):
    me, dataset = symbols
    view = ok(me.get(f"/api/datasets/{dataset}"))
    assert view["input"] == [1, 28, 28] and view["classes"] == CLASSES and view["min_per_class"] == 5
    assert view["counts"] == {c: {"train": 8, "test": 2} for c in CLASSES}
    thumb = view["examples"][0]["thumbnail"]
    picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(thumb.split(",")[1]))))
    assert picture.shape == (28, 28) and picture[0].max() == 0 and picture.max() > 200  # white ink on black
    splits = [(e["label"], e["split"]) for e in view["examples"]]
    first = ok(me.post(f"/api/datasets/{dataset}/images", json={"examples": drawn(1, seed=9)[:1]}))
    assert first["counts"]["check"] == {"train": 8, "test": 3}  # the 11th check: 20% rounded up is 3
    view = ok(me.get(f"/api/datasets/{dataset}"))
    assert [(e["label"], e["split"]) for e in view["examples"]][:30] == splits  # kept as they were
    gone = ok(me.delete(f"/api/datasets/{dataset}/images/{view['examples'][0]['id']}"))
    assert gone["examples"] == 30
    assert [d["id"] for d in ok(me.get("/api/datasets"))["datasets"]] == [dataset]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"classes": ["only"]}, "classes"),
        ({"classes": [f"c{k}" for k in range(21)]}, "21 given; a data set has 2 to 20"),
        ({"classes": ["Cat", "cat"]}, "same name"),
        ({"classes": ["a", "b"], "kind": "picture", "input": [1, 28, 28]}, "a picture data set's input is [3, 32, 32]"),
    ],
)
def test_a_data_set_needs_two_to_twenty_distinct_classes_of_its_kind(app, body, words):
    response = browser(app).post("/api/datasets", json={"name": "x", **body})
    assert response.status_code == 422 and words in response.text


def test_bad_examples_are_refused_naming_them_and_the_bounds_hold(symbols, app):
    me, dataset = symbols
    url = f"/api/datasets/{dataset}/images"
    wrong = me.post(url, json={"examples": [{"label": "star", "pixels": [[0] * 8] * 8}]})
    assert wrong.status_code == 422 and "'star' is not one of check, cross, circle" in wrong.text
    blank = me.post(url, json={"examples": [drawn(1)[0], {"label": "cross", "pixels": [[255] * 28] * 28}]})
    assert blank.status_code == 422 and "examples[1]: the drawing is blank" in blank.text
    assert me.post(url, json={"examples": drawn(14)}).status_code == 422  # 42 in one request, 40 allowed
    full = me.post(url, json={"examples": drawn(11)})  # 30 + 33 > 60
    assert full.status_code == 429 and "at most 60" in full.text
    assert browser(app).get(f"/api/datasets/{dataset}").status_code == 404  # another workspace's
    assert browser(app).post(url, json={"examples": drawn(1)}).status_code == 404


def zipped(entries: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            if name in links:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def folder(classes: dict[str, int]) -> dict[str, bytes]:
    return {
        f"photos/{c}/{k}.png": png((40 * i, 100, 200 - 40 * i))
        for i, (c, n) in enumerate(classes.items())
        for k in range(n)
    }


def test_an_imagefolder_zip_becomes_a_data_set_and_what_is_not_a_picture_is_skipped(app):
    me = browser(app)
    entries = folder({"red": 5, "blue": 6}) | {"photos/red/notes.txt": b"hi", "photos/.DS_Store": b""}
    made = ok(
        me.post("/api/datasets/import", files={"file": ("p.zip", zipped(entries))}, data={"name": "colours"}), 201
    )
    assert made["classes"] == ["blue", "red"] and made["input"] == [3, 32, 32] and made["examples"] == 11
    assert made["skipped"] == ["photos/red/notes.txt: not a PNG, JPEG or WebP picture"]


def test_loose_files_beside_the_class_folders_are_skipped_and_listed_not_taken_for_a_class(app):
    me = browser(app)
    loose = {"photos/README.txt": b"my photos", "photos/LICENSE": b"CC0", "NOTES.md": b"x"}
    made = ok(
        me.post("/api/datasets/import", files={"file": ("p.zip", zipped(folder({"red": 5, "blue": 5}) | loose))}), 201
    )
    assert made["classes"] == ["blue", "red"] and made["examples"] == 10
    assert sorted(made["skipped"]) == [
        "NOTES.md: not in a class folder",
        "photos/LICENSE: not in a class folder",
        "photos/README.txt: not in a class folder",
    ]


@pytest.mark.parametrize(
    ("entries", "links", "words"),
    [
        ({"../escape/a.png": b"x", **folder({"a": 5, "b": 5})}, (), "points outside the folder"),
        ({"/etc/a/a.png": b"x"}, (), "points outside the folder"),
        ({"a/link.png": b"/etc/passwd", **folder({"a": 5, "b": 5})}, ("a/link.png",), "symbolic link"),
        ({"a/inner.zip": b"PK", **folder({"a": 5, "b": 5})}, (), "zip inside the zip"),
        ({"a/bomb.png": b"\0" * 150_000_000, **folder({"a": 5, "b": 5})}, (), "zip bomb"),
        (folder({"only": 8}), (), "1 given"),
        (folder({"a": 5, "b": 4}), (), "b has 4"),
    ],
)
def test_hostile_and_unfit_zips_are_refused_with_a_message(app, entries, links, words):
    response = browser(app).post("/api/datasets/import", files={"file": ("p.zip", zipped(entries, links))})
    assert response.status_code == 422 and words in response.text, response.text


def test_a_zip_that_is_not_one_or_too_large_is_refused(app):
    me = browser(app)
    assert "not a zip" in me.post("/api/datasets/import", files={"file": ("p.zip", b"PK but no")}).text
    big = me.post("/api/datasets/import", files={"file": ("p.zip", b"\0" * 250_000)})
    assert big.status_code == 413


def test_lenet_fine_tuned_on_drawings_reads_new_drawings_by_their_class_names(symbols, app):
    me, dataset = symbols
    job = ok(
        me.post(
            "/api/models",
            json={
                "dataset": dataset,
                "start_from": "lenet",
                "freeze": ["conv1", "conv2"],
                "epochs": 10,
                "batch_size": 8,
            },
        ),
        202,
    )
    run_jobs(app.state.settings, app.state.store)
    model = ok(me.get(f"/api/models/{job['id']}"))
    assert model["status"] == "done" and model["classes"] == CLASSES
    assert model["architecture"]["input"] == [1, 32, 32]  # LeNet's own input: the 28x28 drawings padded
    card = model["card"]
    assert card["dataset"] == "symbols" and card["trained"] == "fine-tuned from lenet, conv1, conv2 frozen"
    assert card["examples"]["circle"] == {"train": 8, "test": 2}
    assert set(card["held_out_accuracy"]) == set(CLASSES) and model["test_accuracy"] >= 0.8
    rng = np.random.default_rng(42)
    right = 0
    for label in CLASSES:
        guess = ok(me.post(f"/api/predict?model={job['id']}", json={"image": data_url(draw_symbol(label, rng))}))
        right += guess["label"] == label
    assert right >= 2
    cards = ok(me.get(f"/api/models/{job['id']}/units/fc3/1"))
    assert cards["label"] == "cross" and len(cards["top"]) == 6  # the data set's 6 held-out examples
    assert ok(me.get(f"/api/models/{job['id']}/embedding"))["classes"] == CLASSES
    assert ok(me.get(f"/api/datasets/{dataset}/labels"))["classes"] == CLASSES
    # exported and imported back against the drawings, it is prepared as they are: as digits
    exported = me.get(f"/api/models/{job['id']}/export?format=onnx").content
    back = me.post("/api/models/import", files={"file": ("mine.onnx", exported)}, data={"dataset": dataset})
    assert ok(back, 201)["preprocess"] == "digit" and back.json()["labels"] == CLASSES
    assert back.json()["test_accuracy"] == pytest.approx(model["test_accuracy"], abs=0.01)


@pytest.mark.parametrize("per_class", [6, 10])
def test_fine_tuning_with_nothing_but_the_data_set_learns_a_few_drawings(app, per_class):
    """The defaults are the lesson: LeNet fine-tuned on 6 or 10 drawings a class, every setting left out,
    reads the held-out drawings and fresh ones, and never trails its from-scratch twin."""
    me = browser(app)
    made = ok(me.post("/api/datasets", json={"name": "symbols", "classes": CLASSES, "kind": "digit"}), 201)
    added = ok(me.post(f"/api/datasets/{made['id']}/images", json={"examples": drawn(per_class, seed=per_class)}))
    defaults = added["training_defaults"]
    assert defaults["words"] == "small data set: 20 epochs, batch 8, augmented"
    fine = ok(me.post("/api/models", json={"dataset": made["id"], "start_from": "lenet"}), 202)
    run_jobs(app.state.settings, app.state.store)
    model = ok(me.get(f"/api/models/{fine['id']}"))
    assert {k: model["settings"][k] for k in ("epochs", "batch_size", "augment")} == {
        "epochs": 20,
        "batch_size": 8,
        "augment": True,
    }
    twin = ok(me.post("/api/models", json={"dataset": made["id"], "architecture": model["architecture"]}), 202)
    run_jobs(app.state.settings, app.state.store)
    scratch = ok(me.get(f"/api/models/{twin['id']}"))
    assert model["test_accuracy"] >= 0.9 and model["test_accuracy"] >= scratch["test_accuracy"] - 0.05
    rng = np.random.default_rng(1000 + per_class)
    fresh = [(c, data_url(draw_symbol(c, rng))) for c in CLASSES for _ in range(10)]
    right = sum(
        ok(me.post(f"/api/predict?model={fine['id']}", json={"image": image}))["label"] == c for c, image in fresh
    )
    assert right >= 27, f"{right} of 30 fresh drawings read right"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"start_from": "lenet", "freeze": ["conv9"]}, 422, "has no layer 'conv9'"),
        ({"start_from": "lenet", "freeze": ["fc3"]}, 422, "output layer"),
        ({"start_from": "fashion", "freeze": []}, 200, ""),
        ({"freeze": ["conv1"], "architecture": "tiny"}, 422, "freeze needs start_from"),
        ({}, 422, "send an architecture, or start_from"),
        ({"start_from": "m0123456789ab"}, 404, "no model"),
    ],
)
def test_a_fine_tune_that_does_not_fit_is_refused_naming_it(symbols, body, status, words):
    me, dataset = symbols
    response = me.post("/api/models", json={"dataset": dataset, "epochs": 1, **body})
    if status == 200:
        assert response.status_code == 202  # clothing's network: a 28x28 input fits drawings as they are
        return
    assert response.status_code == status and words in response.text, response.text


def test_training_needs_five_examples_a_class_and_another_workspaces_data_is_404(app, symbols):
    me, dataset = symbols
    few = ok(me.post("/api/datasets", json={"name": "few", "classes": CLASSES}), 201)
    ok(me.post(f"/api/datasets/{few['id']}/images", json={"examples": drawn(4)}))
    response = me.post("/api/models", json={"dataset": few["id"], "architecture": ARCHITECTURES["tiny"]})
    assert response.status_code == 422 and "at least 5 examples; 'check' has 4" in response.text
    stranger = browser(app).post("/api/models", json={"dataset": dataset, "architecture": "tiny"})
    assert stranger.status_code == 404


def test_a_network_trained_on_photos_of_your_own_shows_its_top_pictures_in_colour(app):
    me = browser(app)
    made = ok(me.post("/api/datasets/import", files={"file": ("p.zip", zipped(folder({"red": 6, "blue": 6})))}), 201)
    spec = {
        "input": [3, 32, 32],
        "classes": 2,
        "layers": [
            {"type": "conv", "filters": 4, "kernel_size": 5},
            {"type": "relu"},
            {"type": "maxpool", "kernel_size": 4},
            {"type": "flatten"},
            {"type": "linear", "units": 2},
        ],
    }
    job = ok(
        me.post("/api/models", json={"dataset": made["id"], "architecture": spec, "epochs": 3, "batch_size": 4}), 202
    )
    run_jobs(app.state.settings, app.state.store)
    assert ok(me.get(f"/api/models/{job['id']}"))["status"] == "done"
    card = ok(me.get(f"/api/models/{job['id']}/units/conv1/0?k=2"))
    picture = np.array(card["top"][0]["picture"])
    assert picture.shape == (3, 32, 32)  # red, green and blue, as the photo was
    assert not np.allclose(picture[0], picture[2])
    assert np.array(card["top"][0]["patch"]).shape[0] == 3


def test_a_batch_comes_as_a_list_or_under_examples_and_a_label_as_a_name_or_an_index(symbols):
    me, dataset = symbols
    rng = np.random.default_rng(5)
    listed = [{"label": "check", "image": data_url(draw_symbol("check", rng))}, {"label": 2, "pixels": [[0] * 8] * 8}]
    listed[1]["pixels"][3] = [0, 0, 255, 255, 255, 255, 0, 0]
    added = ok(me.post(f"/api/datasets/{dataset}/images", json=listed))
    assert len(added["added"]) == 2 and added["examples"] == 32
    view = ok(me.get(f"/api/datasets/{dataset}"))
    assert [e["class"] for e in view["examples"][-2:]] == ["check", "circle"]  # index 2 is the third class
    wrong = me.post(f"/api/datasets/{dataset}/images", json=[{"label": 3, "pixels": [[0] * 8] * 8}])
    assert wrong.status_code == 422 and "3 is not a class index; this data set's are 0 to 2" in wrong.text
    assert me.post(f"/api/datasets/{dataset}/images", json=[]).status_code == 422


def with_a_corrupt_member(method: int, name: str) -> bytes:
    """An ImageFolder zip whose member ``name`` has compressed data its decompressor refuses (the zip's own
    headers intact): a deflate block of the type that does not exist, or LZMA properties out of range."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for entry, data in folder({"red": 6, "blue": 5}).items():
            archive.writestr(entry, data, compress_type=method)
    raw = bytearray(buffer.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo(name)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    if method == zipfile.ZIP_DEFLATED:
        raw[start] = 0b111  # the last block, of type 3 (reserved): "invalid block type"
    else:
        raw[start + 4] = 0xFF  # lc/lp/pb past 9*5*5: "Invalid or unsupported options"
    return bytes(raw)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_LZMA], ids=["deflate", "lzma"])
def test_a_member_whose_compressed_data_is_corrupt_is_skipped_with_its_reason(app, method):
    me = browser(app)
    made = ok(
        me.post("/api/datasets/import", files={"file": ("p.zip", with_a_corrupt_member(method, "photos/red/0.png"))}),
        201,
    )
    assert made["examples"] == 10
    assert made["skipped"] == [
        "photos/red/0.png: it cannot be read from the zip (damaged, encrypted or compressed in an unknown way)"
    ]


def test_an_index_past_any_whole_number_the_server_holds_is_a_422_naming_the_range(app):
    answer = browser(app).get("/api/datasets/digits/images", params={"indices": "99999999999999999999"})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("indices: the digits") and "pictures 0.." in answer.json()["detail"]


def test_folder_names_become_plain_class_names_capped_and_numbered_and_a_colon_is_fine(app):
    me = browser(app)
    folders = {
        "blue\x1b[31m\x07": 5,  # a terminal escape and a bell
        "\u202eder": 5,  # a right-to-left override
        "b" * 3000: 5,
        "time: 12:00": 5,
        "red\r\n": 5,  # meets the next once it is cleaned
        "red": 5,
    }
    made = ok(me.post("/api/datasets/import", files={"file": ("p.zip", zipped(folder(folders)))}), 201)
    classes = made["classes"]
    assert len(classes) == 6 and made["examples"] == 30
    assert {"blue [31m", "der", "time: 12:00", "red", "red (2)"} < set(classes)
    long = next(c for c in classes if c.startswith("b"))
    assert len(long) == 40 and long.endswith("…")
    assert all(c.isprintable() for c in classes)


def test_a_zip_just_under_its_documented_size_is_read_not_refused_by_the_body_limit(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.dataset_zip_max_bytes == 20 * 1024 * 1024  # the README's "20 MiB"
    filler = np.random.default_rng(0).integers(0, 256, 19 * 1024 * 1024, dtype=np.uint8).tobytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # stored: random bytes do not shrink
        for entry, data in folder({"red": 5, "blue": 5}).items():
            archive.writestr(entry, data)
        archive.writestr("photos/red/raw.bin", filler)
    assert 19 * 1024 * 1024 < len(buffer.getvalue()) < 20 * 1024 * 1024
    application = create_app(settings)
    with TestClient(application):
        made = ok(browser(application).post("/api/datasets/import", files={"file": ("p.zip", buffer.getvalue())}), 201)
    assert made["examples"] == 10 and made["skipped"] == ["photos/red/raw.bin: not a PNG, JPEG or WebP picture"]


class Held:
    """Holds the wrapped work at its ``at``-th call until the test lets it go, and says when it has ended."""

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0
        self.release, self.ended = threading.Event(), threading.Event()

    def around(self, function):
        def held(*args, **kwargs):
            self.calls += 1
            if self.calls == self.at:
                assert self.release.wait(30), "the test never let the held work go"
            return function(*args, **kwargs)

        return held

    def until_ended(self, function):
        def ending(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            finally:
                self.ended.set()

        return ending


@pytest.fixture()
def quick(tmp_path):
    """An app whose requests have a 1 s budget."""
    application = create_app(Settings(data_dir=tmp_path, request_timeout_seconds=1.0))
    with TestClient(application):
        yield application


def test_a_batch_answered_503_stores_nothing_and_its_retry_stores_each_example_once(quick, monkeypatch):
    me = browser(quick)
    made = ok(me.post("/api/datasets", json={"name": "marks", "classes": CLASSES, "kind": "digit"}), 201)
    batch = {"examples": drawn(per_class=1)}
    held = Held(at=1)  # after every example is prepared, before any is stored: only the gate can refuse now
    monkeypatch.setattr(own_data, "_store_prepared", held.around(own_data._store_prepared))
    monkeypatch.setattr(own_data, "add_examples", held.until_ended(own_data.add_examples))
    timed_out = me.post(f"/api/datasets/{made['id']}/images", json=batch)
    assert timed_out.status_code == 503 and "budget" in timed_out.json()["detail"]
    held.release.set()  # the work goes on after the answer, as a thread doing NumPy work would
    assert held.ended.wait(30), "the work never ended"
    assert ok(me.get(f"/api/datasets/{made['id']}"))["examples"] == []  # the 503 meant nothing was stored
    monkeypatch.undo()
    ok(me.post(f"/api/datasets/{made['id']}/images", json=batch), 200)
    examples = ok(me.get(f"/api/datasets/{made['id']}"))["examples"]
    assert sorted(e["label"] for e in examples) == [0, 1, 2]


def test_a_zip_import_answered_503_makes_no_data_set(quick, monkeypatch):
    me = browser(quick)
    held = Held(at=3)
    monkeypatch.setattr(own_data, "_read_picture", held.around(own_data._read_picture))
    monkeypatch.setattr(own_data, "import_zip", held.until_ended(own_data.import_zip))
    timed_out = me.post("/api/datasets/import", files={"file": ("p.zip", zipped(folder({"red": 5, "blue": 5})))})
    assert timed_out.status_code == 503
    held.release.set()
    assert held.ended.wait(30), "the import never ended"
    assert ok(me.get("/api/datasets"))["datasets"] == []


def test_a_models_learned_views_show_its_data_sets_pictures_to_the_sets_owner_only(app):
    owner = browser(app)
    made = ok(owner.post("/api/datasets", json={"name": "symbols", "classes": CLASSES, "kind": "digit"}), 201)
    ok(owner.post(f"/api/datasets/{made['id']}/images", json={"examples": drawn(per_class=6)}))
    job = ok(owner.post("/api/models", json={"dataset": made["id"], "start_from": "lenet", "epochs": 1}), 202)
    run_jobs(app.state.settings, app.state.store)
    link = ok(owner.post(f"/api/models/{job['id']}/share"))
    assert "pictures of your data set it was trained on stay yours" in link["travels"]
    drawing = {"image": data_url(draw_symbol("cross", np.random.default_rng(3))), "k": 4}

    mine = ok(owner.get(f"/api/models/{job['id']}/units/fc3/1"))
    assert mine["pictures_note"] is None and all(t["picture"] is not None for t in mine["top"])
    assert ok(owner.post(f"/api/models/{job['id']}/neighbours", json=drawing))["images"] is not None

    other = browser(app)  # a share link's holder (a copy or a lecturer's look is the same: not the set's owner)
    theirs = ok(other.get(f"/api/models/{link['share_id']}/units/fc3/1"))
    assert theirs["pictures_note"] and len(theirs["top"]) == len(mine["top"])
    assert all(t["picture"] is None and t["patch"] is None for t in theirs["top"])
    assert [t["label"] for t in theirs["top"]] == [t["label"] for t in mine["top"]]  # the same view otherwise
    near = ok(other.post(f"/api/models/{link['share_id']}/neighbours", json=drawing))
    assert near["images"] is None and near["pictures_note"] and len(near["neighbours"]) == 4
    assert ok(other.get(f"/api/models/{link['share_id']}/embedding"))["pictures_note"]
    assert ok(other.get(f"/api/model?model={link['share_id']}"))["pictures_note"]
    assert ok(other.get(f"/api/models/{link['share_id']}"))["pictures_note"]
    assert other.get(f"/api/datasets/{made['id']}/images").status_code == 404
    copy = ok(other.post(f"/api/models/{link['share_id']}/copy"), 201)
    assert all(t["picture"] is None for t in ok(other.get(f"/api/models/{copy['id']}/units/fc3/1"))["top"])
