"""Stream ``s3://`` shards in webdataset through boto3 (a ``gopen`` handler, no shell ``pipe:``).

Credentials and the endpoint come from the environment as boto3 reads them (``AWS_ENDPOINT_URL`` for
S3-compatible servers); nothing here logs or stores them.
"""
from __future__ import annotations

import os
import threading

import webdataset as wds

_clients: dict[int, object] = {}
_lock = threading.Lock()


def _client():
    # boto3 clients are not fork-safe: one per process (DataLoader workers are forked)
    pid = os.getpid()
    with _lock:
        if pid not in _clients:
            import boto3
            from botocore.config import Config

            _clients[pid] = boto3.client(
                "s3",
                endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
                config=Config(retries={"max_attempts": 8, "mode": "adaptive"}),
            )
        return _clients[pid]


def split_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3 url: {url!r}")
    bucket, _, key = url[len("s3://"):].partition("/")
    if not bucket or not key:
        raise ValueError(f"s3 url needs a bucket and a key: {url!r}")
    return bucket, key


def gopen_s3(url: str, mode: str = "rb", bufsize: int = 8192, **kw):
    """Open an S3 object as a readable stream (botocore's StreamingBody reads it in chunks, so
    webdataset's ``bufsize`` has nothing to size)."""
    del bufsize
    if mode != "rb":
        raise ValueError(f"{url}: the s3 handler only reads (mode {mode!r})")
    bucket, key = split_s3_url(url)
    return _client().get_object(Bucket=bucket, Key=key)["Body"]


def register() -> None:
    """Make ``webdataset.gopen`` (and so every WebDataset pipeline) open ``s3://`` urls with boto3."""
    wds.gopen_schemes["s3"] = gopen_s3


register()
