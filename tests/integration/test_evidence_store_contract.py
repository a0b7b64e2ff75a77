"""One contract for every evidence store: a folder (LocalStore) and an S3-compatible server
(S3Store against moto's S3 server, over real HTTP on 127.0.0.1) must behave alike."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker.errors import NotFound
from broker.storage import EvidenceStore, InvalidKey, LocalStore, S3Store, StorageError, StoredFile, key_for


@dataclass
class Backend:
    store: EvidenceStore
    count_objects: Callable[[], int]
    damage: Callable[[str], None]  # overwrite what is stored under a key with other bytes
    broken: Callable[[], EvidenceStore]  # the same kind of store, unable to reach its storage


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server", reason="moto[server] is in the test extra")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _local(tmp_path: Path) -> Backend:
    root = tmp_path / "evidence"

    def damage(key: str) -> None:
        root.joinpath(*key.split("/")).write_bytes(b"not what was stored")

    def broken() -> EvidenceStore:
        blocker = tmp_path / "not-a-folder"
        blocker.write_bytes(b"")
        return LocalStore(blocker)  # every path under it is "not a directory"

    return Backend(LocalStore(root), lambda: sum(1 for p in root.rglob("*") if p.is_file()), damage, broken)


def _s3(endpoint: str) -> Backend:
    bucket = f"evidence-{uuid.uuid4().hex[:12]}"  # one bucket per test: the server outlives tests
    store = S3Store(endpoint, bucket, "test-access-key", "test-secret-key", "us-east-1")
    client = store._client
    client.create_bucket(Bucket=bucket)

    def count() -> int:
        return client.list_objects_v2(Bucket=bucket).get("KeyCount", 0)

    def damage(key: str) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=b"not what was stored")

    def broken() -> EvidenceStore:
        import socket

        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return S3Store(f"http://127.0.0.1:{port}", bucket, "test-access-key", "test-secret-key")

    return Backend(store, count, damage, broken)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local(tmp_path)
    return _s3(request.getfixturevalue("s3_endpoint"))


def test_put_then_get_gives_the_same_bytes_under_their_checksum(backend):
    data = os.urandom(300_000) + "发票".encode()
    stored = backend.store.put(data, "application/pdf")
    digest = hashlib.sha256(data).hexdigest()
    assert stored == StoredFile(f"sha256/{digest[:2]}/{digest[2:4]}/{digest}", digest, len(data), "application/pdf")
    assert backend.store.exists(stored.key)
    assert backend.store.get(stored.key) == data


def test_the_same_bytes_stored_twice_are_one_object(backend):
    first = backend.store.put(b"%PDF-1.7 contract", "application/pdf")
    second = backend.store.put(b"%PDF-1.7 contract", "application/pdf")
    other = backend.store.put(b"%PDF-1.7 invoice", "application/pdf")
    assert first == second != other
    assert backend.count_objects() == 2


def test_a_key_with_nothing_stored_is_absent_and_not_found(backend):
    key = key_for(hashlib.sha256(b"never stored").hexdigest())
    assert not backend.store.exists(key)
    with pytest.raises(NotFound):
        backend.store.get(key)


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "sha256/../../../etc/passwd",
        "/sha256/ab/cd/" + "ab" * 32,
        "sha256/ab/cd/" + "ab" * 32,  # folders that don't match the digest
        "sha256/AB/AB/" + "AB" * 32,
        "sha256/ab/ab/" + "ab" * 32 + "/../x",
        "",
    ],
)
def test_a_key_of_any_other_shape_is_refused_before_it_is_looked_up(backend, key):
    with pytest.raises(InvalidKey):
        backend.store.get(key)
    with pytest.raises(InvalidKey):
        backend.store.exists(key)
    assert backend.count_objects() == 0


def test_bytes_that_no_longer_match_their_key_are_refused(backend):
    stored = backend.store.put(b"usage statement, 2026-11", "text/csv")
    backend.damage(stored.key)
    with pytest.raises(StorageError, match="damaged"):
        backend.store.get(stored.key)


def test_a_store_that_cannot_reach_its_storage_raises_one_storage_error(backend):
    broken = backend.broken()
    with pytest.raises(StorageError) as raised:
        broken.put(b"%PDF-1.7 payment", "application/pdf")
    assert raised.value.status_code == 503 and raised.value.__cause__ is not None
    with pytest.raises(StorageError):
        broken.get(key_for(hashlib.sha256(b"x").hexdigest()))
