"""A run's output files read back from S3, for the web app's download buttons."""

from __future__ import annotations

from botocore.exceptions import ClientError

from orca_flows.aws.s3 import PrefixedBucket
from orca_flows.db.models import Run
from orca_flows.domain.actor import Actor
from orca_flows.domain.s3_layout import attempt_prefix, outputs_prefix, s3_uri
from orca_flows.errors import InvalidInputError, NotFoundError
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.services.links import link_access
from orca_flows.services.lookup import get_run
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = ["output_name", "read_output"]


def _outputs_prefix(run: Run) -> str:
    # The outputs of the attempt that counted: the run's last (see domain.s3_layout).
    return outputs_prefix(attempt_prefix(run.s3_prefix or "", run.attempt))


def _outputs_uri(run: Run) -> str:
    return s3_uri(run.pipeline.link.bucket or "", _outputs_prefix(run))


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


def read_output(settings: OrcaSettings, actor: Actor, run_id: str, uri: str) -> bytes:
    """The bytes of one of the actor's run's outputs.

    The run is read (and its ownership checked) in a unit of work; the object is fetched
    after it, with no transaction open.

    Raises:
        NotFoundError: No such run (or another user's), or the object is gone.
        InvalidInputError: The URI is not one of the run's outputs.
    """
    with unit_of_work(settings) as session:
        run = get_run(session, actor, run_id)
        name = output_name(run, uri)
        prefix = _outputs_prefix(run)
        link = run.pipeline.link
    with prefect_api(settings):
        access = link_access(link)
        outputs = PrefixedBucket(access.client("s3"), access.bucket, prefix)
        try:
            return outputs.get(name)
        except ClientError as error:
            if error.response["Error"]["Code"] in {"NoSuchKey", "404"}:
                raise NotFoundError("output", uri, "It was deleted from the bucket.") from error
            raise
