"""Data sets of one's own: classes named by a learner, examples drawn, photographed or uploaded (one by
one or as an ImageFolder zip), each prepared the way its kind says, with a train/test split fixed as the
examples arrive.

A data set is a store document (``dataset``, owner: its workspace) listing its examples (id, class, split),
and one blob of pictures (uint8, ``(N, 28, 28)`` for digits, ``(N, 3, 32, 32)`` for pictures) rewritten
under the data set's lock when examples are added or deleted.
"""

from __future__ import annotations

import base64
import io
import lzma
import math
import uuid
import zipfile
import zlib
from collections import Counter
from typing import Any

import numpy as np
from PIL import Image

from app.config import Settings
from app.errors import NotFound, OverQuota, Refused, ServiceError, StoreFull, TooLarge
from app.imaging import decode_base64_image, decode_image, to_grayscale
from app.jobs.store import JobStore, now
from app.services import quotas
from app.services.quotas import check_bytes, usage
from app.services.workspaces import Workspace
from engine import budget
from engine.datasets import DATASETS, Dataset, load_dataset
from engine.names import MAX_CLASS_NAME, plain_text
from engine.preprocess import PAD, colour_input, preprocess_digit
from engine.train import training_defaults

KINDS = {"digit": (1, 28, 28), "picture": (3, 32, 32)}
TEST_SHARE = 0.2  # at least this share of each class is held out


class DatasetNotFound(NotFound):
    """No data set by that id in this workspace."""


def _blob_key(dataset_id: str) -> str:
    return f"dataset/{dataset_id}/images"


def _pictures(store: JobStore, dataset_id: str) -> tuple[list[str], np.ndarray | None]:
    blob = store.get_blob(_blob_key(dataset_id))
    if blob is None:
        return [], None
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return [str(i) for i in data["ids"]], data["images"]


def _pictures_file(ids: list[str], images: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, ids=np.array(ids), images=images)
    return buffer.getvalue()


def _save_pictures(store: JobStore, doc: dict[str, Any], data: bytes) -> None:
    """Writes the data set's pictures and counts the change in what it keeps (in ``doc["bytes"]``, and for
    its address and the store)."""
    store.put_blob(_blob_key(doc["id"]), data)
    store.charge(doc.get("client"), len(data) - int(doc.get("bytes") or 0))
    doc["bytes"] = len(data)


def owned(store: JobStore, workspace: Workspace | None, dataset_id: str) -> dict[str, Any]:
    """The workspace's data set ``dataset_id``; 404 for anyone else's (it does not say it exists)."""
    doc = store.get_doc("dataset", dataset_id)
    if doc is None or workspace is None or doc["workspace"] != workspace.id:
        raise DatasetNotFound(f"dataset: no data set {dataset_id!r} in your workspace; GET /api/datasets lists yours")
    return doc


PICTURES_STAY = (
    "the pictures come from the data set this model was trained on, which belongs to the workspace that made "
    "it: they are shown there only; here the views leave them out"
)


def pictures_withheld(store: JobStore, workspace: Workspace | None, dataset: str | None) -> str | None:
    """Why a viewer may not see a data set's pictures (None when it may): a shipped data set's are anyone's;
    an own data set's only its owner's, however the viewer reached the model (a share link, a copy, a
    lecturer looking at a student's model)."""
    if dataset is None or dataset in DATASETS:
        return None
    doc = store.get_doc("dataset", dataset)
    return None if doc is not None and workspace is not None and doc["workspace"] == workspace.id else PICTURES_STAY


def create_dataset(
    store: JobStore,
    settings: Settings,
    workspace: Workspace,
    address: str | None,
    name: str,
    classes: list[str],
    kind: str,
) -> dict[str, Any]:
    """A new, empty data set of ``classes`` (2 to the setting's most, distinct names)."""
    quotas.check(store, settings, workspace, "datasets", "delete one first")
    check_classes(classes, settings)
    dataset_id = "d" + uuid.uuid4().hex[:12]
    doc: dict[str, Any] = {
        "id": dataset_id,
        "workspace": workspace.id,
        "client": address,  # whose address's room its pictures take
        "bytes": 0,
        "name": name,
        "kind": kind,
        "input": list(KINDS[kind]),
        "classes": classes,
        "created": now(),
        "examples": [],
    }
    store.put_doc("dataset", dataset_id, workspace.id, doc)
    return summary(doc)


def check_classes(classes: list[str], settings: Settings) -> None:
    if not 2 <= len(classes) <= settings.max_dataset_classes:
        raise Refused(f"classes: {len(classes)} given; a data set has 2 to {settings.max_dataset_classes}")
    if len({c.casefold() for c in classes}) != len(classes):
        raise Refused("classes: two classes have the same name")


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """A data set's counts: per class, how many examples train and how many are held out for testing."""
    counts = {c: {"train": 0, "test": 0} for c in doc["classes"]}
    for example in doc["examples"]:
        counts[doc["classes"][example["label"]]][example["split"]] += 1
    training = sum(n["train"] for n in counts.values())
    return {
        "id": doc["id"],
        "name": doc["name"],
        "kind": doc["kind"],
        "input": doc["input"],
        "classes": doc["classes"],
        "created": doc["created"],
        "examples": len(doc["examples"]),
        "counts": counts,
        "training_defaults": training_defaults(training, doc["kind"] == "digit"),
    }


def split_for(held: int, total: int) -> str:
    """Where a new example goes in a class of ``total`` examples with it, ``held`` of the others held out: the
    test split while it holds fewer than 20% of the class (rounded up), else training; chosen once and kept."""
    return "test" if held < math.ceil(TEST_SHARE * total) else "train"


def prepare(kind: str, example: dict[str, Any], settings: Settings, field: str) -> np.ndarray:
    """One example (``image`` as a data URL, or ``pixels``) as the kind prepares it, uint8."""
    if example.get("pixels") is not None:
        gray = np.clip(np.asarray(example["pixels"], np.float32), 0, 255)
        image = Image.fromarray(gray.astype(np.uint8))
    else:
        image = decode_base64_image(example["image"], settings, field=field, fit=settings.pixels_max_side)
    return prepare_image(kind, image, field)


def prepare_image(kind: str, image: Image.Image, field: str) -> np.ndarray:
    """A decoded picture as the kind prepares it: a digit's 28x28 frame, or a 3x32x32 colour picture."""
    if kind == "digit":
        frame = preprocess_digit(to_grayscale(image))
        if frame.empty:
            raise Refused(f"{field}: the drawing is blank; draw the example first")
        return np.round(frame.pixels[PAD:-PAD, PAD:-PAD] * 255).astype(np.uint8)
    rgb = np.asarray(image.convert("RGB"))
    return np.round(colour_input(rgb, KINDS["picture"], keep_aspect=True) * 255).astype(np.uint8)


def add_examples(
    store: JobStore, settings: Settings, workspace: Workspace, dataset_id: str, examples: list[dict[str, Any]]
) -> dict[str, Any]:
    """Prepares every example first (a bad one refuses the batch, naming it), then adds them all at once."""
    doc = owned(store, workspace, dataset_id)
    prepared = []
    for k, example in enumerate(examples):
        budget.check_time()  # past its budget the client has had its 503: stop, and store nothing
        label = class_index(doc["classes"], example["label"], f"examples[{k}].label")
        prepared.append((label, prepare(doc["kind"], example, settings, f"examples[{k}]")))
    return _store_prepared(store, settings, workspace, dataset_id, prepared)


def class_index(classes: list[str], label: str | int, field: str) -> int:
    """A label as a class index: a class's name, or its index (an integer, 0 for the first class)."""
    if isinstance(label, int) and not isinstance(label, bool):
        if not 0 <= label < len(classes):
            raise Refused(f"{field}: {label} is not a class index; this data set's are 0 to {len(classes) - 1}")
        return label
    if label not in classes:
        names = ", ".join(classes)
        raise Refused(f"{field}: {label!r} is not one of {names} (or an index 0 to {len(classes) - 1})")
    return classes.index(label)


def _store_prepared(
    store: JobStore, settings: Settings, workspace: Workspace, dataset_id: str, prepared: list[tuple[int, np.ndarray]]
) -> dict[str, Any]:
    """Adds prepared (class, picture) pairs under the data set's lock, each given its split."""
    with store.doc_lock(f"dataset:{dataset_id}"):
        budget.commit()  # from here the pictures are stored and the client hears so, never a 503
        doc = owned(store, workspace, dataset_id)
        if len(doc["examples"]) + len(prepared) > settings.max_dataset_examples:
            raise OverQuota(
                f"the data set holds {len(doc['examples'])} examples; at most {settings.max_dataset_examples} in all"
            )
        ids, images = _pictures(store, dataset_id)
        new = np.stack([p for _, p in prepared])
        # per class, the examples so far and those held out, counted once and kept up as examples arrive
        total = Counter(e["label"] for e in doc["examples"])
        held = Counter(e["label"] for e in doc["examples"] if e["split"] == "test")
        added: list[str] = []
        for label, _ in prepared:
            total[label] += 1
            split = split_for(held[label], total[label])
            held[label] += split == "test"
            example_id = "x" + uuid.uuid4().hex[:10]
            doc["examples"].append({"id": example_id, "label": label, "split": split})
            added.append(example_id)
        data = _pictures_file(ids + added, new if images is None else np.concatenate([images, new]))
        check_bytes(store, settings, usage(store, workspace)["bytes"], doc.get("client"), len(data) - doc["bytes"])
        _save_pictures(store, doc, data)
        store.put_doc("dataset", dataset_id, workspace.id, doc)
    return {**summary(doc), "added": added}


def delete_example(store: JobStore, workspace: Workspace | None, dataset_id: str, example_id: str) -> dict[str, Any]:
    with store.doc_lock(f"dataset:{dataset_id}"):
        doc = owned(store, workspace, dataset_id)
        if not any(e["id"] == example_id for e in doc["examples"]):
            raise DatasetNotFound(f"example: no example {example_id!r} in this data set")
        doc["examples"] = [e for e in doc["examples"] if e["id"] != example_id]
        ids, images = _pictures(store, dataset_id)
        keep = [k for k, i in enumerate(ids) if i != example_id]
        assert images is not None
        _save_pictures(store, doc, _pictures_file([ids[k] for k in keep], images[keep]))
        store.put_doc("dataset", dataset_id, doc["workspace"], doc)
    return summary(doc)


def delete_dataset(store: JobStore, workspace: Workspace | None, dataset_id: str) -> None:
    """The data set and its pictures go; models trained on it stay (their learned views lose its pictures)."""
    with store.doc_lock(f"dataset:{dataset_id}"):
        doc = owned(store, workspace, dataset_id)
        store.delete_doc("dataset", dataset_id)
        store.delete_blob(_blob_key(dataset_id))
        store.charge(doc.get("client"), -int(doc.get("bytes") or 0))


def list_datasets(store: JobStore, workspace: Workspace | None) -> list[dict[str, Any]]:
    return [] if workspace is None else [summary(d) for d in store.docs("dataset", workspace.id)]


def thumbnail(picture: np.ndarray) -> str:
    """A picture as a PNG data URL (white on black for digits, in colour for pictures)."""
    array = picture if picture.ndim == 2 else np.moveaxis(picture, 0, -1)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def dataset_view(store: JobStore, workspace: Workspace | None, dataset_id: str) -> dict[str, Any]:
    """The data set with every example's class, split and thumbnail."""
    doc = owned(store, workspace, dataset_id)
    ids, images = _pictures(store, dataset_id)
    where = {example_id: k for k, example_id in enumerate(ids)}
    examples = [
        {**e, "class": doc["classes"][e["label"]], "thumbnail": thumbnail(images[where[e["id"]]])}
        for e in doc["examples"]
        if images is not None and e["id"] in where
    ]
    return {**summary(doc), "examples": examples}


def preparation(store: JobStore, name: str) -> str:
    """How a picture is prepared for the data set ``name``: ``digit`` (MNIST's crop, box and centre of mass)
    for the shipped digits and an own data set of drawn digits, ``picture`` (scaled to fit) otherwise."""
    if name in DATASETS:
        return "digit" if name == "digits" else "picture"
    doc = store.get_doc("dataset", name)
    return str(doc["kind"]) if doc is not None else "picture"


def resolve(store: JobStore, name: str, split: str) -> Dataset:
    """A shipped data set's split, or an own data set's (by id): the one place jobs and views read data."""
    return resolve_splits(store, name, (split,))[0]


def resolve_splits(store: JobStore, name: str, splits: tuple[str, ...] = ("train", "test")) -> list[Dataset]:
    """Several splits of one data set, an own one's pictures read from the store once for all of them."""
    if name in DATASETS:
        return [load_dataset(name, split) for split in splits]
    doc = store.get_doc("dataset", name)
    if doc is None:
        raise DatasetNotFound(f"dataset: the data set {name!r} has been deleted")
    ids, images = _pictures(store, name)
    where = {example_id: k for k, example_id in enumerate(ids)}
    shape = tuple(doc["input"][1:]) if doc["kind"] == "digit" else tuple(doc["input"])
    found = []
    for split in splits:
        chosen = [e for e in doc["examples"] if e["split"] == split and e["id"] in where]
        pictures = (
            images[[where[e["id"]] for e in chosen]]
            if chosen and images is not None
            else np.zeros((0, *shape), np.uint8)
        )
        labels = np.array([e["label"] for e in chosen], np.uint8)
        found.append(Dataset(name, split, pictures, labels, tuple(doc["classes"])))
    return found


# -- an ImageFolder zip -------------------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _members(data: bytes, settings: Settings) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """The zip's file entries, after refusing what could harm the server: a path out of the folder, a
    link, a zip inside the zip, too many files, a member compressed like a bomb."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise Refused("file: not a zip file (zip a folder with one folder of pictures per class)") from None
    if len(infos) > settings.dataset_zip_max_files:
        raise Refused(f"file: {len(infos)} entries; a zip may hold at most {settings.dataset_zip_max_files}")
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        drive = len(parts[0]) == 2 and parts[0][1] == ":"  # C:/..., as a Windows zip tool may write it
        if name.startswith(("/", "\\")) or drive or ".." in parts:
            raise Refused(f"file: the entry {name[:80]!r} points outside the folder; refused")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise Refused(f"file: the entry {name[:80]!r} is a symbolic link; refused")
        if name.lower().endswith(".zip"):
            raise Refused(f"file: the entry {name[:80]!r} is a zip inside the zip; refused")
        if info.file_size > settings.dataset_zip_max_ratio * max(info.compress_size, 1) and info.file_size > 1 << 16:
            raise Refused(
                f"file: the entry {name[:80]!r} expands {info.file_size:,} bytes from "
                f"{info.compress_size:,}: a zip bomb; refused",
            )
    expanded = sum(i.file_size for i in infos)
    if expanded > 4 * settings.dataset_zip_max_bytes:
        raise Refused(f"file: the zip expands to {expanded:,} bytes; at most {4 * settings.dataset_zip_max_bytes:,}")
    return archive, [i for i in infos if not i.is_dir()]


def read_image_folder(
    data: bytes, settings: Settings
) -> tuple[zipfile.ZipFile, dict[str, list[zipfile.ZipInfo]], list[str]]:
    """The zip, its pictures by class (one folder per class, perhaps inside one top folder), and the files
    skipped, each with why. Pictures are read one at a time later, never all at once."""
    archive, members = _members(data, settings)
    paths = [m.filename.split("/") for m in members]
    # the class folders sit in one top folder when every picture is two levels down in the same one (a README
    # or a LICENSE beside them, or beside that folder, changes nothing: such files are skipped and listed)
    pictures = [p for p in paths if p[-1].lower().endswith(IMAGE_SUFFIXES) and not p[-1].startswith(".")]
    tops = {p[0] for p in pictures if len(p) > 2}
    strip = 1 if len(tops) == 1 and not any(len(p) == 2 for p in pictures) else 0
    found: dict[str, list[zipfile.ZipInfo]] = {}
    skipped = []
    for member, path in zip(members, paths):
        if path[-1].startswith(".") or "__MACOSX" in path:
            continue  # the operating system's own files
        path = path[strip:] if len(path) > strip + 1 else path[-1:]
        if len(path) != 2:
            skipped.append(f"{member.filename}: not in a class folder")
        elif not path[1].lower().endswith(IMAGE_SUFFIXES):
            skipped.append(f"{member.filename}: not a PNG, JPEG or WebP picture")
        elif member.file_size > settings.max_decoded_bytes:
            skipped.append(f"{member.filename}: {member.file_size:,} bytes, more than a picture may take")
        else:
            found.setdefault(path[0], []).append(member)
    return archive, _class_names(found), skipped


def _class_names(found: dict[str, list[zipfile.ZipInfo]]) -> dict[str, list[zipfile.ZipInfo]]:
    """The folders' names as class names: plain text of at most 40 characters (escapes, line breaks and
    direction overrides out), numbered where two folders' names become one ("cat", "cat (2)")."""
    named: dict[str, list[zipfile.ZipInfo]] = {}
    for folder in sorted(found):
        base = plain_text(folder, MAX_CLASS_NAME) or "unnamed"
        name, count = base, 1
        while name in named:
            count += 1
            name = f"{plain_text(base, MAX_CLASS_NAME - 5)} ({count})"
        named[name] = found[folder]
    return named


def _read_picture(archive: zipfile.ZipFile, member: zipfile.ZipInfo, kind: str, settings: Settings) -> np.ndarray:
    try:
        raw = archive.read(member)
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError, RuntimeError):
        # damaged (a bad checksum, corrupt deflate or LZMA data, cut short), encrypted, or an unknown method
        why = "it cannot be read from the zip (damaged, encrypted or compressed in an unknown way)"
        raise Refused(why) from None
    image = decode_image(raw, settings, field=member.filename, fit=settings.pixels_max_side)
    return prepare_image(kind, image, member.filename)


def import_zip(
    store: JobStore,
    settings: Settings,
    workspace: Workspace,
    address: str | None,
    data: bytes,
    name: str,
    kind: str,
) -> dict[str, Any]:
    """A data set made from an ImageFolder zip; the pictures that cannot be read are skipped and said."""
    if len(data) > settings.dataset_zip_max_bytes:
        raise TooLarge(f"file: {len(data):,} bytes; a zip may be {settings.dataset_zip_max_bytes:,} at most")
    archive, found, skipped = read_image_folder(data, settings)
    classes = sorted(found)
    check_classes(classes, settings)
    examples: list[dict[str, Any]] = []
    for label in classes:
        for member in found[label]:
            budget.check_time()
            try:
                examples.append({"label": label, "prepared": _read_picture(archive, member, kind, settings)})
            except ServiceError as error:
                skipped.append(f"{member.filename}: {error.message}")
    counts = {c: sum(e["label"] == c for e in examples) for c in classes}
    short = {c: n for c, n in counts.items() if n < settings.dataset_min_per_class}
    if short:
        words = ", ".join(f"{c} has {n}" for c, n in short.items())
        raise Refused(f"file: each class needs at least {settings.dataset_min_per_class} pictures; {words}")
    if len(examples) > settings.max_dataset_examples:
        raise Refused(f"file: {len(examples)} pictures; a data set holds at most {settings.max_dataset_examples}")
    budget.commit()
    made = create_dataset(store, settings, workspace, address, name, classes, kind)
    try:
        answer = _store_prepared(
            store, settings, workspace, made["id"], [(classes.index(e["label"]), e["prepared"]) for e in examples]
        )
    except (OverQuota, StoreFull):
        delete_dataset(store, workspace, made["id"])  # no room for its pictures: no empty data set either
        raise
    return {**answer, "skipped": skipped}
