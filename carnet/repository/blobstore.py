"""Content-addressed blob store on the filesystem: payloads by SHA-256, byte-exact.

A submission writes each payload to ``tmp/`` (MTOM parts are spooled there directly while they
are hashed), commits its metadata, then publishes the file by an atomic rename to
``ab/cd/<sha256>``. A failed submission deletes its temporary files. A crash between commit and
publish leaves a temporary file whose digest a committed row names: ``recover`` finishes the
publish at start-up and deletes every other leftover, so no orphan file survives and no committed
row lacks its bytes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine, select

CHUNK = 1 << 20


@dataclass
class Staged:
    """A payload written to a temporary file, with the digests computed while writing."""

    path: Path
    sha256: str
    sha1: str
    size: int


class BlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def stage_bytes(self, data: bytes) -> Staged:
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="stage-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return Staged(
            Path(name),
            hashlib.sha256(data).hexdigest(),
            hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            len(data),
        )

    def stage_file(self, path: str | Path, sha256: str, sha1: str, size: int) -> Staged:
        """Adopt a file already written under tmp/ (an MTOM part spooled while hashed)."""
        p = Path(path)
        if p.parent.resolve() != self.tmp_dir.resolve():
            target = self.tmp_dir / f"stage-{uuid.uuid4().hex}"
            os.replace(p, target)
            p = target
        with open(p, "rb") as f:
            os.fsync(f.fileno())
        return Staged(p, sha256, sha1, size)

    def sync_staging(self) -> None:
        """Make the names of staged files durable (call once, before the metadata commit)."""
        _fsync_dir(self.tmp_dir)

    def publish(self, staged: Staged) -> Path:
        """Move a staged file to its content address (atomic; identical content may already be there).

        The rename is not fsynced: if a crash loses it, the staged file is still in tmp/ (made durable
        by ``sync_staging``) and ``recover`` publishes it at start-up, since a committed row names it.
        """
        final = self.path(staged.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, final)
        return final

    def discard(self, staged: Staged) -> None:
        staged.path.unlink(missing_ok=True)

    def open(self, sha256: str) -> BinaryIO:
        return open(self.path(sha256), "rb")

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        with self.open(sha256) as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def recover(self, engine: Engine) -> tuple[int, int]:
        """Finish interrupted publishes and remove leftovers; returns (published, removed)."""
        from carnet.registry.schema import StoredDocumentRow

        published = removed = 0
        leftovers = [p for p in self.tmp_dir.iterdir() if p.is_file()]
        if not leftovers:
            return 0, 0
        with engine.connect() as conn:
            for p in leftovers:
                digest = _sha256_file(p)
                known = conn.execute(
                    select(StoredDocumentRow.unique_id).where(StoredDocumentRow.sha256 == digest).limit(1)
                ).first()
                if known is not None and not self.exists(digest):
                    self.publish(Staged(p, digest, "", p.stat().st_size))
                    published += 1
                else:
                    p.unlink()
                    removed += 1
        return published, removed


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
