"""Where subsidy evidence files live: a local folder or an S3-compatible object store.

Evidence (contracts, invoices, proof of payment, usage statements) is stored by content: the key
is `sha256/ab/cd/<hex>`, so the same bytes uploaded twice are one object, a key names its own
checksum (every read is verified against it), and a key that is not exactly that shape is refused
before it reaches a path or a bucket. What a file *is* (its award, its evidence type, its name)
is the database's business; the store keeps bytes.

`check_file` is the upload's validation: a size limit, and a content type sniffed from the
bytes, never from the file name or the type the client declared.

Nothing here runs at import: boto3 is imported, and its client made, when an S3Store is.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

from broker.errors import DomainError, InvalidInput, NotFound, PayloadTooLarge

EVIDENCE_TYPES = ("contract", "invoice", "payment", "usage_statement")

DEFAULT_MAX_BYTES = 20 * 1024 * 1024

# What may be uploaded, by the name a person knows it by, with the content type it is stored as.
ALLOWED_TYPES: dict[str, str] = {
    "PDF": "application/pdf",
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "OFD": "application/ofd",  # GB/T 33190, the format of China's electronic invoices (数电票)
    "XLSX": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "CSV": "text/csv",
}

_KEY = re.compile(r"sha256/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")


# ------------------------------------------------------------------------------- errors and keys


class StorageError(DomainError):
    """The evidence store failed (unreachable, refused, or gave back bytes that don't match their key).

    The message is safe to show; what went wrong underneath is the exception's __cause__, for the log."""

    status_code = 503


class InvalidKey(InvalidInput):
    """A key that is not `sha256/ab/cd/<64 hex>`: never turned into a path or an object name."""

    def __init__(self, key: object) -> None:
        shown = repr(key)[:80]
        super().__init__(
            f"{shown} is not an evidence key (sha256/ab/cd/<64 hex digits>).",
            {"key": ["Not an evidence key."]},
        )


@dataclass(frozen=True)
class StoredFile:
    key: str
    sha256: str
    size: int
    content_type: str


def key_for(sha256_hex: str) -> str:
    """The key of the bytes with this SHA-256 (lower-case hex)."""
    return check_key(f"sha256/{sha256_hex[:2]}/{sha256_hex[2:4]}/{sha256_hex}")


def check_key(key: object) -> str:
    """The key itself if it has the one allowed shape, its folders matching its digest; else InvalidKey."""
    match = _KEY.fullmatch(key) if isinstance(key, str) else None
    if match is None or match[3][:2] != match[1] or match[3][2:4] != match[2]:
        raise InvalidKey(key)
    return key


def _stored(data: bytes, content_type: str) -> StoredFile:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"evidence is bytes, not {type(data).__name__}")
    digest = hashlib.sha256(data).hexdigest()
    return StoredFile(key_for(digest), digest, len(data), content_type)


def _verified(key: str, data: bytes) -> bytes:
    if hashlib.sha256(data).hexdigest() != key.rsplit("/", 1)[1]:
        raise StorageError(f"The stored evidence file {key} is damaged: its content no longer matches its checksum.")
    return data


# ------------------------------------------------------------------------------- the interface


class EvidenceStore(Protocol):
    def put(self, data: bytes, content_type: str) -> StoredFile:
        """Store the bytes (once, however often they are put) and say under which key."""

    def get(self, key: str) -> bytes:
        """The bytes under `key`, checked against it; NotFound if there are none."""

    def exists(self, key: str) -> bool:
        """Whether bytes are stored under `key`."""


class LocalStore:
    """Evidence in a folder: one file per key, written whole or not at all."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def put(self, data: bytes, content_type: str) -> StoredFile:
        """Store the bytes (once, however often they are put) and say under which key."""
        stored = _stored(data, content_type)
        path = self._path(stored.key)
        try:
            if path.is_file():
                return stored
            path.parent.mkdir(parents=True, exist_ok=True)
            # A temporary file beside the target, made durable, then renamed over it: a reader
            # or a crash sees either no file or the whole one, never a half-written one.
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            _fsync_folder(path.parent)
        except OSError as error:
            raise StorageError("The evidence file could not be saved; nothing was stored.") from error
        return stored

    def get(self, key: str) -> bytes:
        """The bytes under `key`, checked against it; NotFound if there are none."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"No evidence file is stored under {key}.") from None
        except OSError as error:
            raise StorageError("The evidence file could not be read.") from error
        return _verified(key, data)

    def exists(self, key: str) -> bool:
        """Whether bytes are stored under `key`."""
        try:
            return self._path(key).is_file()
        except OSError as error:
            raise StorageError("The evidence store could not be read.") from error


def _fsync_folder(folder: Path) -> None:
    # The rename is durable only once the folder's entry is: fsync the folder too (POSIX only).
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class S3Store:
    """Evidence in a bucket of an S3-compatible object store (the production option)."""

    CONNECT_TIMEOUT = 5.0
    READ_TIMEOUT = 30.0
    MAX_ATTEMPTS = 3  # botocore's "standard" retries: throttling, 5xx and connection errors

    def __init__(
        self,
        endpoint_url: str | None,
        bucket: str,
        access_key: str | None,
        secret_key: str | None,
        region: str | None = None,
        *,
        addressing_style: str = "auto",
    ) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        # The store's own failures (refusals, timeouts, unreachable endpoints): anything else is a bug.
        self._failures = (BotoCoreError, ClientError)
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        # Makes no request: botocore connects on the first call.
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region or "us-east-1",
            config=Config(
                connect_timeout=self.CONNECT_TIMEOUT,
                read_timeout=self.READ_TIMEOUT,
                retries={"max_attempts": self.MAX_ATTEMPTS, "mode": "standard"},
                s3={"addressing_style": addressing_style},
                # botocore 1.36 began adding CRC checksums to every put by default, which several
                # S3-compatible stores refuse (boto/boto3#4392: Huawei OBS, ByteDance TOS, older MinIO).
                # Integrity is kept without them: each put carries Content-MD5 and each get is
                # checked against the SHA-256 in its key.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def __repr__(self) -> str:  # never the credentials
        return f"S3Store(endpoint_url={self.endpoint_url!r}, bucket={self.bucket!r})"

    def put(self, data: bytes, content_type: str) -> StoredFile:
        """Store the bytes (once, however often they are put) and say under which key."""
        stored = _stored(data, content_type)
        if self.exists(stored.key):
            return stored
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=stored.key,
                Body=bytes(data),
                ContentType=content_type,
                ContentMD5=_md5_base64(data),  # the server refuses bytes damaged on the way
            )
        except self._failures as error:
            raise StorageError("The evidence file could not be saved; nothing was stored.") from error
        return stored

    def get(self, key: str) -> bytes:
        """The bytes under `key`, checked against it; NotFound if there are none."""
        check_key(key)
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=key)
            data = answer["Body"].read()
        except self._failures as error:
            if _error_code(error) in {"NoSuchKey", "404"}:
                raise NotFound(f"No evidence file is stored under {key}.") from None
            raise StorageError("The evidence file could not be read.") from error
        return _verified(key, data)

    def exists(self, key: str) -> bool:
        """Whether bytes are stored under `key`."""
        check_key(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except self._failures as error:
            if _error_code(error) in {"NoSuchKey", "404", "NotFound"}:
                return False
            raise StorageError("The evidence store could not be read.") from error
        return True


def _md5_base64(data: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _error_code(error: BaseException) -> str | None:
    response = getattr(error, "response", None)  # botocore's ClientError
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code"))
    return None


# ------------------------------------------------------------------------------- configuration


STORE_KINDS = ("local", "s3")
_S3_REQUIRED = ("S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY")


class StoreMisconfigured(ValueError):
    """The settings don't name a usable evidence store (config.check_settings turns it into a refusal to start)."""


def store_settings_problems(config: Mapping[str, Any]) -> list[str]:
    """What is wrong with the evidence store's settings, each naming its BROKER_* variable; [] when nothing."""
    kind = config.get("EVIDENCE_STORE") or "local"
    if kind not in STORE_KINDS:
        return [f"BROKER_EVIDENCE_STORE={kind!r} is not one of {', '.join(STORE_KINDS)}"]
    if kind == "s3":
        return [f"BROKER_{name} is not set (BROKER_EVIDENCE_STORE=s3 needs it)" for name in _S3_REQUIRED
                if not config.get(name)]
    return []


def store_from_config(config: Mapping[str, Any], *, instance_path: str | Path | None = None) -> EvidenceStore:
    """The evidence store the settings name (config.load_settings: EVIDENCE_STORE, EVIDENCE_DIR, S3_*).

    `local` keeps files in EVIDENCE_DIR, by default `evidence/` in the instance folder (pass the
    app's `instance_path`; else the INSTANCE_PATH setting); `s3` needs S3_BUCKET and both keys.
    Makes no request: an S3 store connects on its first call."""
    problems = store_settings_problems(config)
    if problems:
        raise StoreMisconfigured("; ".join(problems))
    if (config.get("EVIDENCE_STORE") or "local") == "local":
        folder = config.get("EVIDENCE_DIR")
        if not folder:
            base = instance_path or config.get("INSTANCE_PATH")
            if not base:
                raise StoreMisconfigured("BROKER_EVIDENCE_DIR is not set and no instance folder was given to default to")
            folder = Path(base) / "evidence"
        return LocalStore(Path(folder))
    return S3Store(
        config.get("S3_ENDPOINT_URL") or None,
        str(config["S3_BUCKET"]),
        str(config["S3_ACCESS_KEY"]),
        str(config["S3_SECRET_KEY"]),
        config.get("S3_REGION") or None,
    )


# ------------------------------------------------------------------------------- upload validation


def check_file(data: bytes, filename: str, declared_type: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The content type of an uploaded evidence file, sniffed from its bytes.

    `filename` and `declared_type` (the Content-Type the client sent) are only named in refusals:
    a renamed or mislabelled file is judged by what it is. PayloadTooLarge over `max_bytes`,
    InvalidInput on the field `file` when it is empty or not one of ALLOWED_TYPES."""
    name = _shown(filename) or "The file"
    if len(data) > max_bytes:
        problem = f"{name} is {len(data)} bytes; evidence files may be at most {max_bytes} bytes ({_mib(max_bytes)})."
        raise PayloadTooLarge(problem, {"file": [problem]}, location="files")
    if not data:
        problem = f"{name} is empty."
        raise InvalidInput(problem, {"file": [problem]}, location="files")
    kind = sniff(data)
    declared = f" (sent as {_shown(declared_type)})" if _shown(declared_type) else ""
    if kind is None:
        problem = (
            f"{name}{declared} is not a file type evidence may be: its content is not one of "
            f"{', '.join(ALLOWED_TYPES)}."
        )
        raise InvalidInput(problem, {"file": [problem]}, location="files")
    claimed = _claimed_kind(filename, declared_type)
    if kind == "CSV" and claimed not in (None, "CSV"):
        # CSV is the one type without a signature: text is taken as CSV unless its name or type
        # says it is a format that has one. A text file renamed .pdf lacks what a PDF must start with.
        problem = (
            f"{name}{declared} is not a file type evidence may be: it says it is {claimed}, but its content "
            f"is plain text; it must be one of {', '.join(ALLOWED_TYPES)}."
        )
        raise InvalidInput(problem, {"file": [problem]}, location="files")
    return ALLOWED_TYPES[kind]


# The file names and declared types that claim a format with a signature (everything but CSV).
_EXTENSIONS = {"pdf": "PDF", "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "ofd": "OFD", "xlsx": "XLSX"}
_DECLARED = {content_type: kind for kind, content_type in ALLOWED_TYPES.items() if kind != "CSV"}


def _claimed_kind(filename: str, declared_type: str) -> str | None:
    """Which signed format of ALLOWED_TYPES the name's extension or the declared type claims, if any."""
    name = str(filename or "").strip().lower()
    extension = name.rsplit(".", 1)[1] if "." in name else ""
    declared = str(declared_type or "").split(";", 1)[0].strip().lower()
    return _EXTENSIONS.get(extension) or _DECLARED.get(declared)


def sniff(data: bytes) -> str | None:
    """Which of ALLOWED_TYPES the bytes are (by their signature; ZIP-based formats by their
    members, CSV by being text), or None."""
    if data.startswith(b"%PDF-"):
        return "PDF"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"PK\x03\x04"):
        return _sniff_zip(data)
    if _is_csv_text(data):
        return "CSV"
    return None


def _sniff_zip(data: bytes) -> str | None:
    # Only the zip's directory is read (names, not content), so a zip bomb costs nothing here.
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    if "[Content_Types].xml" in names and "xl/workbook.xml" in names:
        return "XLSX"
    if "OFD.xml" in names:  # GB/T 33190: the package's entry file sits at the root
        return "OFD"
    return None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_MARKUP = re.compile(r"\s*<[A-Za-z!?/]")


def _is_csv_text(data: bytes) -> bool:
    # CSV has no signature: accept text (UTF-8, with or without BOM, or GB18030, which Excel in
    # China saves) with no control characters but tab and line ends. Markup is refused, so an
    # HTML or SVG page can't be passed off as a spreadsheet export.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        return False
    if _CONTROL.search(text):
        return False
    return not _MARKUP.match(text)


def _shown(value: object) -> str:
    text = str(value or "").strip()
    return text if len(text) <= 120 else text[:117] + "..."


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"
