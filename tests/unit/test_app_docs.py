"""The served app's own pages work offline: /docs loads Swagger UI from the app, not from a CDN."""

import re

from fastapi.testclient import TestClient

from chatbot.app import create_app
from chatbot.config import Settings


def test_api_docs_page_loads_every_asset_from_the_app(tmp_path):
    app = create_app(Settings(db_path=tmp_path / "db.sqlite3", index_dir=tmp_path / "index"), ui=False)
    client = TestClient(app)  # no lifespan: nothing loads models
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    assert re.search(r"url: '/openapi.json'", page.text)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "loading"
