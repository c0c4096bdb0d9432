"""The front end's shared values (static/js/config.js) are the server's: one source of truth. (The
JavaScript arithmetic itself is checked against the engine in Chromium: tests/browser/test_js_matches_engine.py.)"""

import json
from pathlib import Path

from app.config import Settings
from app.schemas import LECTURE_IMAGE, LECTURE_POOL_INPUT
from engine import OUTPUT_MAPPINGS, PADDING_MODES
from engine.filters import MAX_STRETCH_GAIN

CONFIG_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "config.js"


def read_config() -> dict:
    text = CONFIG_JS.read_text()
    block = text.split("// CONFIG-JSON-START", 1)[1].split("// CONFIG-JSON-END", 1)[0]
    return json.loads(block.split("=", 1)[1].strip().rstrip(";"))


def test_config_js_holds_the_servers_values():
    config = read_config()
    defaults = Settings()
    assert config == {
        "paddingModes": list(PADDING_MODES),
        "outputMappings": list(OUTPUT_MAPPINGS),
        "maxFilterSide": defaults.max_filter_side,
        "lectureImage": LECTURE_IMAGE,
        "lecturePool": LECTURE_POOL_INPUT,
        "maxBodyBytes": defaults.max_body_bytes,
        "maxStretchGain": MAX_STRETCH_GAIN,
    }
