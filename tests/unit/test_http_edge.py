"""The HTTP edge keeps its declarations: a path's other methods are refused, replies are the declared models."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from chalicelib.edge import models
from chalicelib.edge.endpoints import Auth, Endpoint, Reply, _written
from tests.unit.conftest import admin_headers


def test_a_known_path_called_with_another_method_is_refused_with_405_and_allow(client):
    response = client.http.put("/api/repositories", headers=admin_headers(), body="{}")

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert response.json_body["error"] == "method_not_allowed"


ENDPOINT = Endpoint("get", "/x", "x", "service", Auth.PUBLIC, {200: models.AppResponse, 204: None})


class Other(BaseModel):
    value: int


def test_a_reply_of_an_undeclared_model_is_a_bug_not_a_reply():
    with pytest.raises(TypeError):
        _written(ENDPOINT, Other(value=1))


def test_a_reply_with_an_undeclared_status_is_a_bug_not_a_reply():
    with pytest.raises(TypeError):
        _written(ENDPOINT, Reply(None, 202))


def test_no_reply_is_written_as_204_with_an_empty_body():
    response = _written(ENDPOINT, None)

    assert (response.status_code, response.body) == (204, "")
