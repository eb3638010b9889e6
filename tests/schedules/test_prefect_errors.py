"""The one translation of Prefect outages into Orca errors (deployments and block documents)."""

from __future__ import annotations

import httpx
import pytest
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings

from orca_flows.errors import PrefectUnavailableError
from orca_flows.prefect_adapter.api import prefect_errors

_URL = "http://127.0.0.1:9/api"


def _status(code: int) -> PrefectHTTPStatusError:
    request = httpx.Request("GET", f"{_URL}/deployments/x")
    response = httpx.Response(code, request=request)
    return PrefectHTTPStatusError.from_httpx_error(
        httpx.HTTPStatusError("failed", request=request, response=response)
    )


@pytest.mark.parametrize(
    ("error", "says"),
    [
        pytest.param(httpx.ConnectError("Connection refused"), "Connection refused", id="refused"),
        pytest.param(httpx.ReadTimeout("timed out"), "timed out", id="timeout"),
        pytest.param(_status(503), "HTTP 503", id="http-503"),
        pytest.param(
            RuntimeError(f"Failed to reach API at {_URL}"), "Failed to reach", id="client-check"
        ),
    ],
)
def test_an_outage_says_where_and_what_to_do(error: Exception, says: str) -> None:
    with temporary_settings(updates={PREFECT_API_URL: _URL}):
        with pytest.raises(PrefectUnavailableError) as caught, prefect_errors("save block 'b'"):
            raise error

    message = str(caught.value)
    assert message.startswith(
        f"could not save block 'b': the Prefect API at {_URL} cannot be reached"
    )
    assert says in message and "orca local up" in message and "PREFECT_API_URL" in message


@pytest.mark.parametrize("code", [401, 403])
def test_refused_credentials_say_which_setting_to_fix(code: int) -> None:
    with temporary_settings(updates={PREFECT_API_URL: _URL}):
        with pytest.raises(PrefectUnavailableError) as caught, prefect_errors("pause it"):
            raise _status(code)

    assert f"refused Orca's credentials (HTTP {code})" in str(caught.value)
    assert "PREFECT_API_AUTH_STRING" in str(caught.value)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(_status(422), id="http-422"),
        pytest.param(RuntimeError("something else"), id="other-runtime-error"),
        pytest.param(ValueError("Unable to find block document"), id="value-error"),
    ],
)
def test_anything_else_passes_unchanged(error: Exception) -> None:
    with pytest.raises(type(error)) as caught, prefect_errors("save block 'b'"):
        raise error

    assert caught.value is error
