"""S3 access confined to one key prefix of one bucket (a user's corner of Orca's bucket)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from orca_flows.domain.s3_layout import s3_uri
from orca_flows.errors import InvalidInputError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectRequestTypeDef, PutObjectRequestTypeDef

__all__ = ["PrefixedBucket"]


class PrefixedBucket:
    """Put, get, list and sign objects under one prefix; keys are relative to that prefix.

    Args:
        client: An S3 client (injected; the caller chooses account, region and endpoint).
        bucket: The bucket name.
        prefix: Key prefix every call is confined to, e.g. ``orca/7/``.
    """

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def key(self, relative: str) -> str:
        """The full object key for ``relative``; refuses keys that would leave the prefix."""
        parts = relative.split("/")
        if not relative or relative.startswith("/") or ".." in parts:
            raise InvalidInputError(
                "key", f"object key {relative!r} must be a relative path without '..'."
            )
        return self.prefix + relative

    def uri(self, relative: str) -> str:
        """The ``s3://bucket/key`` URI of ``relative``."""
        return s3_uri(self.bucket, self.key(relative))

    def put(self, relative: str, body: bytes, *, content_type: str | None = None) -> str:
        """Store ``body`` at ``relative`` and return its ``s3://`` URI."""
        request: PutObjectRequestTypeDef = {
            "Bucket": self.bucket,
            "Key": self.key(relative),
            "Body": body,
        }
        if content_type:
            request["ContentType"] = content_type
        self.client.put_object(**request)
        return self.uri(relative)

    def get(self, relative: str) -> bytes:
        """The bytes stored at ``relative`` (raises the client's ``NoSuchKey`` if absent)."""
        response = self.client.get_object(Bucket=self.bucket, Key=self.key(relative))
        return response["Body"].read()

    def read_from(self, relative: str, start: int = 0) -> bytes:
        """The object's bytes from offset ``start`` on; empty when it is absent or has
        nothing past ``start`` yet (a log that is still growing)."""
        request: GetObjectRequestTypeDef = {"Bucket": self.bucket, "Key": self.key(relative)}
        if start:
            request["Range"] = f"bytes={start}-"
        try:
            response = self.client.get_object(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] in {"NoSuchKey", "InvalidRange", "404", "416"}:
                return b""
            raise
        return response["Body"].read()

    def exists(self, relative: str) -> bool:
        """Whether an object is stored at ``relative``."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(relative))
        except ClientError as error:
            if error.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def list(self, relative_prefix: str = "") -> list[str]:
        """Keys (relative to this prefix) under ``relative_prefix``, sorted."""
        full = self.prefix + relative_prefix
        paginator = self.client.get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            keys.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents", []))
        return sorted(keys)

    def delete(self, relative: str) -> None:
        """Delete the object at ``relative`` (no error when it is already gone)."""
        self.client.delete_object(Bucket=self.bucket, Key=self.key(relative))

    def presigned_get_url(self, relative: str, expires_in: int = 3600) -> str:
        """A URL that downloads ``relative`` without credentials for ``expires_in`` seconds."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.key(relative)},
            ExpiresIn=expires_in,
        )
