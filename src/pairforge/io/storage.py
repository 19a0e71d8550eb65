"""Where a run's files live: a local directory or an S3 prefix, with atomic visibility.

The commit protocol (DESIGN.md) needs one primitive from a store: make a complete object visible at
once. Locally that is write-to-temp + ``os.replace`` in the same directory; on S3 it is a single
``PutObject`` or a completed multipart upload (S3 never shows a partial object).
"""
from __future__ import annotations

import abc
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterable, NamedTuple

TMP_MARK = ".tmp-"


class ObjectStat(NamedTuple):
    """Size in bytes and modification time (seconds since the epoch; None where the store has none)."""

    size: int
    mtime: float | None


class Storage(abc.ABC):
    """A flat namespace of named objects under a root (names use '/' separators)."""

    url: str

    @abc.abstractmethod
    def read_bytes(self, name: str) -> bytes: ...

    @abc.abstractmethod
    def write_bytes(self, name: str, data: bytes) -> None:
        """Write so that readers see either the old object or the complete new one."""

    @abc.abstractmethod
    def put_file(self, name: str, local_path: str) -> None:
        """Move a complete local file (ownership passes to the store) so it becomes visible atomically."""

    @abc.abstractmethod
    def local_tempfile(self, name: str) -> str:
        """A local scratch path to build ``name`` in before :meth:`put_file` (same filesystem if local)."""

    @abc.abstractmethod
    def exists(self, name: str) -> bool: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Names (relative to the root) that start with ``prefix``, sorted."""

    @abc.abstractmethod
    def delete(self, name: str) -> None: ...

    @abc.abstractmethod
    def size(self, name: str) -> int: ...

    def stats(self, prefix: str = "") -> dict[str, ObjectStat]:
        """Size and mtime of every object whose name starts with ``prefix`` (one listing, not one call each)."""
        return {n: ObjectStat(self.size(n), None) for n in self.list(prefix)}

    def open_read(self, name: str):
        """A readable binary file object (default: in memory)."""
        import io

        return io.BytesIO(self.read_bytes(name))

    def uri(self, name: str) -> str:
        return self.url.rstrip("/") + "/" + name

    def delete_many(self, names: Iterable[str]) -> None:
        for n in names:
            self.delete(n)


class LocalStorage(Storage):
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def _path(self, name: str) -> Path:
        p = (self.root / name).resolve()
        if self.root not in p.parents and p != self.root:
            raise ValueError(f"object name {name!r} escapes the storage root {self.root}")
        return p

    def read_bytes(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    def write_bytes(self, name: str, data: bytes) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}{TMP_MARK}{uuid.uuid4().hex}")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def put_file(self, name: str, local_path: str) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not _same_fs(local_path, path.parent):
            tmp = self.local_tempfile(name)
            shutil.copyfile(local_path, tmp)
            os.unlink(local_path)
            local_path = tmp
        with open(local_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(local_path, path)

    def local_tempfile(self, name: str) -> str:
        """A temp path on the same filesystem as ``name`` (so put_file is a rename, not a copy)."""
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path.with_name(f"{path.name}{TMP_MARK}{uuid.uuid4().hex}"))

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def list(self, prefix: str = "") -> list[str]:
        # walk only the folder the prefix names (a run's hq/ folder can hold millions of files)
        top = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not top.is_dir() or (top != self.root and self.root not in top.resolve().parents):
            return []
        out = []
        for dirpath, _dirs, files in os.walk(top):
            for fn in files:
                rel = os.path.relpath(os.path.join(dirpath, fn), self.root).replace(os.sep, "/")
                if rel.startswith(prefix):
                    out.append(rel)
        return sorted(out)

    def stats(self, prefix: str = "") -> dict[str, ObjectStat]:
        out = {}
        for name in self.list(prefix):
            try:
                st = os.stat(self.root / name)
            except FileNotFoundError:  # removed between the listing and the stat
                continue
            out[name] = ObjectStat(st.st_size, st.st_mtime)
        return out

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            pass

    def size(self, name: str) -> int:
        return self._path(name).stat().st_size

    def open_read(self, name: str):
        return open(self._path(name), "rb")

    def uri(self, name: str) -> str:
        return str(self._path(name))


def _same_fs(a: str, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


class S3Storage(Storage):
    """S3 (or any S3-compatible server). Credentials and endpoint come from the environment
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``),
    as boto3 reads them; they are never written anywhere by pairforge."""

    def __init__(self, url: str, endpoint_url: str | None = None):
        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// url: {url!r}")
        rest = url[len("s3://"):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ValueError(f"s3 url has no bucket: {url!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self._endpoint,
                config=Config(retries={"max_attempts": 8, "mode": "adaptive"}),
            )
        return self._client

    def __getstate__(self):  # boto3 clients do not pickle; workers make their own
        d = dict(self.__dict__)
        d["_client"] = None
        return d

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def read_bytes(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()

    def write_bytes(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)

    def put_file(self, name: str, local_path: str) -> None:
        # upload_file uses multipart above its threshold; the object appears only on completion
        self.client.upload_file(local_path, self.bucket, self._key(name))
        try:
            os.unlink(local_path)
        except FileNotFoundError:
            pass

    def local_tempfile(self, name: str) -> str:
        fd, path = tempfile.mkstemp(prefix="pairforge-", suffix="-" + name.replace("/", "_"))
        os.close(fd)
        return path

    def exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(name))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def list(self, prefix: str = "") -> list[str]:
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        out = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                out.append(obj["Key"][strip:])
        return sorted(out)

    def stats(self, prefix: str = "") -> dict[str, ObjectStat]:
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        out = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                out[obj["Key"][strip:]] = ObjectStat(int(obj["Size"]), obj["LastModified"].timestamp())
        return dict(sorted(out.items()))

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def size(self, name: str) -> int:
        return int(self.client.head_object(Bucket=self.bucket, Key=self._key(name))["ContentLength"])


def open_storage(url: str | os.PathLike, endpoint_url: str | None = None) -> Storage:
    """A Storage for a local path or an ``s3://bucket/prefix`` url."""
    s = str(url)
    if s.startswith("s3://"):
        return S3Storage(s, endpoint_url=endpoint_url)
    if "://" in s and not s.startswith("file://"):
        raise ValueError(f"unsupported output location {s!r}: use a local path or s3://bucket/prefix")
    if s.startswith("file://"):
        s = s[len("file://"):]
    return LocalStorage(s)
