import asyncio
import io

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.main import create_app
from tests.conftest import run_async


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def png_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 60x80 RGB picture: a smooth gradient with a bright square, so filters visibly change it."""
    y, x = np.mgrid[0:60, 0:80]
    rgb = np.stack([x * 3, y * 4, (x + y) * 2], axis=-1).astype(np.uint8)
    rgb[20:40, 30:50] = 250
    return rgb


def ok(response, status: int = 200):
    """The JSON of a response whose status was checked first (its body says why when it was not)."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    return response.json()


def browser(app) -> TestClient:
    """A browser of its own on ``app``: the first page visit gives it a workspace cookie."""
    client = TestClient(app)
    assert client.get("/").status_code == 200
    return client


def at_once(app, client: TestClient, method: str, url: str, bodies: list[dict]) -> list[int]:
    """The statuses of requests sent all at once in one browser's workspace (one event loop, as a server
    runs them; the sync routes run on its threads in parallel)."""

    async def send_all() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", cookies=client.cookies) as c:
            answers = await asyncio.gather(*(c.request(method, url, json=body) for body in bodies))
        return [answer.status_code for answer in answers]

    return run_async(send_all())
