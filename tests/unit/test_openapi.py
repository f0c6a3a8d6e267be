"""The OpenAPI document covers every route, with models and the shared error answers."""

from __future__ import annotations

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


def test_docs_page_points_at_the_document(client: FlaskClient) -> None:
    response = client.get("/docs")

    assert response.mimetype == "text/html"
    assert "/openapi.json" in response.get_data(as_text=True)


def test_the_bearer_scheme_is_declared_without_a_global_requirement(
        client: FlaskClient) -> None:
    document = client.get("/openapi.json").json

    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert not document.get("security")
