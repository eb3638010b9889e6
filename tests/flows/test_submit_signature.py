"""The submit flow takes exactly the parameters its deployments declare."""

from __future__ import annotations

from typing import Any

from prefect.utilities.callables import parameter_schema

from orca_flows.flows.submit import submit_pipeline_run
from orca_flows.prefect_adapter.deployments import submit_parameter_schema


def _without_descriptions(schema: dict[str, Any]) -> dict[str, Any]:
    properties = {
        name: {k: v for k, v in spec.items() if k != "description"}
        for name, spec in schema["properties"].items()
    }
    return {**schema, "properties": properties}


def test_the_deployment_schema_matches_the_flow() -> None:
    flow_schema = parameter_schema(submit_pipeline_run).model_dump(exclude_unset=True)
    assert _without_descriptions(flow_schema) == _without_descriptions(submit_parameter_schema())
    assert all("description" in p for p in submit_parameter_schema()["properties"].values())
