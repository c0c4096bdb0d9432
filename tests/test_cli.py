"""The `convscope` command: train, evaluate and serve, as the README shows them."""

import json
import subprocess
import sys

import httpx
import numpy as np

from app.cli import main
from engine import SHIPPED_MODELS, load_digits, load_network
from tests.conftest import SAMPLE_PATH, free_port, wait_until_up


def test_train_writes_weights_that_evaluate_reads(tmp_path, capsys):
    out = tmp_path / "tiny.npz"
    status = main(
        ["train", "--data", str(SAMPLE_PATH), "--epochs", "1", "--seed", "3", "--out", str(out), "--version", "test"]
    )
    assert status == 0
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "val acc" in err and "saved 63802 parameters" in err
    model = load_network(out)
    assert model.meta["version"] == "test" and model.meta["train_size"] == 450 and model.meta["val_size"] == 50

    assert main(["evaluate", "--data", str(SAMPLE_PATH), "--weights", str(out)]) == 0
    report = capsys.readouterr().out
    assert report.startswith("accuracy ") and "on 500 images" in report
    # the model scored is named: its file, version and training, not "the network"
    assert "with tiny.npz (version test, trained on " in report and "with seed 3, 63,802 parameters)" in report
    assert len(report.strip().splitlines()) == 12  # the accuracy, a header and ten rows of the confusion matrix


def test_train_takes_an_architecture_file_and_a_shipped_dataset(tmp_path, capsys):
    spec = {
        "input": [1, 28, 28],
        "classes": 10,
        "layers": [
            {"type": "conv", "filters": 2, "kernel_size": 3, "stride": 2},
            {"type": "relu"},
            {"type": "flatten"},
            {"type": "linear", "units": 10},
        ],
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = tmp_path / "clothes.npz"
    args = ["train", "--dataset", "fashion", "--architecture", str(tmp_path / "spec.json"), "--epochs", "1"]
    assert main([*args, "--out", str(out)]) == 0
    model = load_network(out)
    assert model.spec == spec
    assert model.meta["labels"][0] == "T-shirt/top" and model.meta["train_size"] == 12000
    assert model.meta["test_accuracy"] > 0.5  # one epoch of a 2-filter net, far above 10% chance
    capsys.readouterr()
    assert main(["evaluate", "--dataset", "fashion", "--weights", str(out)]) == 0
    assert "on 2000 images (fashion)" in capsys.readouterr().out


def test_train_refuses_an_architecture_that_does_not_fit(tmp_path, capsys):
    status = main(["train", "--dataset", "digits", "--architecture", "broken", "--out", str(tmp_path / "x.npz")])
    assert status == 2
    assert "layer 7 (conv3): a 5x5 kernel does not fit a 2x2 input" in capsys.readouterr().err


def test_evaluate_reads_an_mnist_idx_folder(tmp_path, capsys):
    images, labels = load_digits(SAMPLE_PATH)
    header = bytes([0, 0, 8, 3]) + np.array([len(images), 28, 28], ">u4").tobytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(header + images.tobytes())
    header = bytes([0, 0, 8, 1]) + np.array([len(labels)], ">u4").tobytes()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(header + labels.tobytes())
    assert main(["evaluate", "--data", str(tmp_path)]) == 0
    accuracy = float(capsys.readouterr().out.split()[1].rstrip("%"))
    assert accuracy >= 98.5


def test_a_missing_data_path_is_a_clear_error(tmp_path, capsys):
    assert main(["evaluate", "--data", str(tmp_path / "nowhere.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_serve_starts_the_app(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1"])
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process, seconds=30)
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        assert response.status_code == 200 and response.json()["status"] == "ok"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_evaluate_scores_each_data_set_with_its_own_model_and_refuses_a_mismatch(capsys):
    assert main(["evaluate", "--dataset", "fashion"]) == 0
    report = capsys.readouterr().out.splitlines()[0]
    accuracy = float(report.split()[1].rstrip("%"))
    assert accuracy > 85 and "Clothing classifier" in report  # not the digit network's 8.5% on clothes
    lenet = str(SHIPPED_MODELS["lenet"])
    assert main(["evaluate", "--dataset", "fashion", "--weights", lenet]) == 2
    assert "was trained on digits, not fashion" in capsys.readouterr().err


def test_convscope_alone_prints_its_help_and_has_a_version(capsys):
    assert main([]) == 0
    assert "usage: convscope" in capsys.readouterr().out
    done = subprocess.run([sys.executable, "-m", "app.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("convscope ")
