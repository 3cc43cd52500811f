"""The batch's multipart writer: parts are uploaded by one background thread while the next one fills. The
object must be the bytes written, in order, with one part in flight at most; an upload's error must reach
the caller (who aborts the upload); no thread may be left behind."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from modelsync.service import batch


def _uploaders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("batch-upload")]


class FakeS3:
    """The multipart calls, recorded; ``fail_part`` makes that part's upload fail."""

    def __init__(self, fail_part: int | None = None) -> None:
        self.fail_part = fail_part
        self.parts: dict[int, bytes] = {}
        self.calls: list[str] = []
        self.active = 0
        self.most_active = 0
        self.completed: list[dict[str, Any]] | None = None
        self.put: bytes | None = None
        self._lock = threading.Lock()

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        self.calls.append("create")
        return {"UploadId": "u1"}

    def upload_part(self, UploadId: str, PartNumber: int, Body: bytes, **_: Any) -> dict[str, Any]:
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if PartNumber == self.fail_part:
                raise ClientError({"Error": {"Code": "SlowDown", "Message": "try later"}}, "UploadPart")
            self.parts[PartNumber] = Body
            return {"ETag": f'"e{PartNumber}"'}
        finally:
            with self._lock:
                self.active -= 1

    def complete_multipart_upload(self, MultipartUpload: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.completed = MultipartUpload["Parts"]
        self.calls.append("complete")
        return {}

    def abort_multipart_upload(self, **_: Any) -> dict[str, Any]:
        self.calls.append("abort")
        return {}

    def put_object(self, Body: bytes, **_: Any) -> dict[str, Any]:
        self.put = Body
        return {}


def _pieces(seed: int, total: int) -> list[bytes]:
    rng = random.Random(seed)
    out, size = [], 0
    while size < total:
        piece = bytes(rng.randrange(256) for _ in range(rng.randint(1, 700)))
        out.append(piece)
        size += len(piece)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_the_object_is_the_bytes_written_in_order(seed: int) -> None:
    s3 = FakeS3()
    writer = batch.MultipartWriter(s3, "b", "k", "text/csv", part_bytes=1000)
    pieces = _pieces(seed, 20_000)
    for piece in pieces:
        writer.write(piece)
    writer.close()
    assert s3.completed is not None and len(s3.completed) >= 10
    assert [p["PartNumber"] for p in s3.completed] == list(range(1, len(s3.completed) + 1))
    assert [p["ETag"] for p in s3.completed] == [f'"e{i}"' for i in range(1, len(s3.completed) + 1)]
    assert b"".join(s3.parts[i] for i in sorted(s3.parts)) == b"".join(pieces)
    assert s3.most_active == 1 and s3.calls == ["create", "complete"]
    assert not _uploaders()


def test_a_small_object_is_one_put() -> None:
    s3 = FakeS3()
    writer = batch.MultipartWriter(s3, "b", "k", "text/csv", part_bytes=1000)
    writer.write(b"a,b\n1,2\n")
    writer.close()
    assert s3.put == b"a,b\n1,2\n" and s3.calls == [] and not _uploaders()


@pytest.mark.parametrize("fail_part", [1, 3])
def test_a_failed_upload_reaches_the_caller_who_aborts(fail_part: int) -> None:
    s3 = FakeS3(fail_part=fail_part)
    writer = batch.MultipartWriter(s3, "b", "k", "text/csv", part_bytes=1000)
    with pytest.raises(ClientError, match="SlowDown"):
        try:
            for piece in _pieces(5, 6_000):
                writer.write(piece)
            writer.close()
        except BaseException:
            writer.abort()
            raise
    assert s3.calls == ["create", "abort"] and s3.completed is None
    assert not _uploaders()
