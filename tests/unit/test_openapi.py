"""The OpenAPI document covers every route, with models and the shared error answers."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient


def test_document_lists_every_route_with_error_answers(app: Flask, client: FlaskClient
                                                       ) -> None:
    document = client.get("/openapi.json").json

    assert document["openapi"].startswith("3.")
    routes = {rule.rule.replace("<int:", "<").replace("<", "{").replace(">", "}")
              for rule in app.url_map.iter_rules()
              if rule.endpoint not in ("static",) and not rule.endpoint.startswith("openapi")}
    assert routes <= set(document["paths"])
    for operations in document["paths"].values():
        for operation in operations.values():
            answers = set(operation["responses"])
            assert {"400", "404", "422"} <= answers or "204" in answers
            assert any(code.startswith("2") for code in answers)


def test_views_carry_their_query_and_body_models(client: FlaskClient) -> None:
    document = client.get("/openapi.json").json

    data = document["paths"]["/streams/{name}/data"]["get"]
    assert {"limit", "cursor", "format", "min", "max", "order"} <= {
        parameter["name"] for parameter in data["parameters"]}
    changes = document["paths"]["/streams/{name}/changes"]["get"]
    assert {"since", "cursor"} <= {parameter["name"] for parameter in changes["parameters"]}
    put = document["paths"]["/streams/{name}"]["put"]
    assert "application/json" in put["requestBody"]["content"]


def test_docs_page_and_its_assets_come_from_this_server(client: FlaskClient) -> None:
    response = client.get("/docs")

    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    page = response.get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert urls and all(url.startswith("/") and not url.startswith("//") for url in urls)
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        asset.close()
    init = client.get("/static/docs/init.js").get_data(as_text=True)
    assert '"/openapi.json"' in init and "validatorUrl: null" in init
    assert client.get("/docs/assets/../../app/__init__.py").status_code == 404


def test_the_bearer_scheme_is_declared_without_a_global_requirement(
        client: FlaskClient) -> None:
    document = client.get("/openapi.json").json

    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert not document.get("security")
