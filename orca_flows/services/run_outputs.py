"""A run's output files read back from S3, for the web app's download buttons."""

from __future__ import annotations

from botocore.exceptions import ClientError

from orca_flows.db.models import Run
from orca_flows.errors import InvalidInputError, NotFoundError
from orca_flows.services.links import link_access

__all__ = ["output_name", "read_output"]


def _outputs_uri(run: Run) -> str:
    return f"s3://{run.pipeline.link.bucket}/{run.s3_prefix}outputs/"


def output_name(run: Run, uri: str) -> str:
    """The file name of one of ``run``'s output URIs, relative to its outputs folder.

    Raises:
        InvalidInputError: The URI is not under the run's outputs (or climbs out with ``..``).
    """
    prefix = _outputs_uri(run)
    name = uri.removeprefix(prefix)
    if name == uri or not name or ".." in name.split("/") or name.startswith("/"):
        raise InvalidInputError("output", f"{uri} is not an output of run {run.id}.")
    return name


def read_output(run: Run, uri: str) -> bytes:
    """The bytes of one of ``run``'s outputs (``run`` already scoped to its owner).

    Raises:
        InvalidInputError: The URI is not one of the run's outputs.
        NotFoundError: The object is gone from the bucket.
    """
    key = f"{run.s3_prefix}outputs/{output_name(run, uri)}"
    access = link_access(run.pipeline.link)
    try:
        response = access.client("s3").get_object(Bucket=access.bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] in {"NoSuchKey", "404"}:
            raise NotFoundError("output", uri, "It was deleted from the bucket.") from error
        raise
    return response["Body"].read()
