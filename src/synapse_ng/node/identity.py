"""A node's identity: an ed25519 key pair whose hex public key is the node id.

    identity = Identity.load_or_create(path)   the seed lives in `path` (64 hex chars + newline, mode 0600)
    identity.node_id                           64 lowercase hex chars: the public key
    identity.sign(data) -> hex signature       128 hex chars
    verify_signature(node_id, data, sig)       True or False, never raises on malformed input

Why the key file is created the way it is: a node's id is the only thing that makes its votes count, so
it must never change behind its back. The seed is written to a private temp file in the same directory
(O_CREAT|O_EXCL, 0600, fsync) and then hard-linked to its final name. `link` fails if the name already
exists, so when two processes start at once exactly one key wins and the other process loads it; and
the final name only ever points at a complete file, so a crash mid-write leaves at worst a stray temp
file (`.<name>.tmp-*`), never a half-written key. On a filesystem without hard links the key is created
in place with O_EXCL instead, and a process that loses that race waits briefly for the winner's write.

A key file that other users can read is refused rather than silently fixed: the key may already have
leaked, and the operator should know. The seed is never logged and never appears in a repr.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import time
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.signing import SigningKey, VerifyKey

from ..errors import InvalidInput
from ..fsutil import fsync_directory, write_atomically
from ..json_bounds import HEX64, HEX128

logger = logging.getLogger(__name__)

SEED_BYTES = 32
KEY_FILE_MODE = 0o600
_MAX_KEY_FILE_BYTES = 4096  # a key file is 65 bytes; anything this big is certainly not one
_PARTIAL_WAIT_S = 2.0  # how long a loser waits for a key being written in place (no-hard-link fallback)

_SEED_TEXT = re.compile(r"[0-9a-fA-F]{64}")


class IdentityError(InvalidInput):
    """A key file that cannot be used as it is; the message says what to do about it."""


class Identity:
    """An ed25519 signing key. `node_id` is public; the seed never leaves this object."""

    __slots__ = ("_node_id", "_signing_key")

    def __init__(self, signing_key: SigningKey) -> None:
        self._signing_key = signing_key
        self._node_id = signing_key.verify_key.encode().hex()

    @property
    def node_id(self) -> str:
        """Hex of the 32-byte public key: 64 lowercase hex chars."""
        return self._node_id

    def sign(self, data: bytes) -> str:
        """The hex ed25519 signature (128 chars) of `data`. Deterministic: same data, same signature."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"Identity.sign takes bytes, got {type(data).__name__}")
        return self._signing_key.sign(bytes(data)).signature.hex()

    def __repr__(self) -> str:
        return f"Identity(node_id={self._node_id!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other._node_id == self._node_id

    def __hash__(self) -> int:
        return hash(self._node_id)

    @classmethod
    def generate(cls) -> Identity:
        """A fresh identity held only in memory (tests, throwaway nodes)."""
        return cls(SigningKey.generate())

    @classmethod
    def load_or_create(cls, path: Path | str) -> Identity:
        """Load the key at `path`, creating it (once, atomically, mode 0600) if it does not exist.

        Raises IdentityError for a key file that is a directory, is readable by group or others, or does
        not hold exactly 64 hex chars (plus an optional newline).
        """
        path = Path(path)
        if not path.exists() and not path.is_symlink():
            path.parent.mkdir(parents=True, exist_ok=True)
            seed = secrets.token_bytes(SEED_BYTES)
            if create_secret_file(path, seed):
                identity = cls(SigningKey(seed))
                logger.info("created a new node identity %s in %s", identity.node_id, path)
                return identity
            # Another process created it first: use theirs.
            return cls(SigningKey(read_secret_file(path, wait_for_writer=True)))
        return cls(SigningKey(read_secret_file(path)))


def verify_signature(node_id: str, data: bytes, signature: str) -> bool:
    """True iff `signature` is a valid ed25519 signature of `data` by the key `node_id`.

    Any malformed input (not a string, wrong length, not lowercase hex, not a curve point) is simply
    False: a peer's bad message must never crash the node that checks it.
    """
    try:
        if not (isinstance(node_id, str) and isinstance(signature, str)):
            return False
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return False
        if not (HEX64.fullmatch(node_id) and HEX128.fullmatch(signature)):
            return False
        VerifyKey(bytes.fromhex(node_id)).verify(bytes(data), bytes.fromhex(signature))
        return True
    except (CryptoError, ValueError, TypeError):
        return False


def create_secret_file(path: Path, seed: bytes) -> bool:
    """Write `seed` to `path` unless it exists. True if we created it, False if someone else did."""
    content = (seed.hex() + "\n").encode("ascii")
    try:
        # Exclusive: of two processes creating the key at once, exactly one wins; the other reads it.
        write_atomically(path, content, mode=KEY_FILE_MODE, exclusive=True)
    except FileExistsError:
        return False
    except OSError as exc:  # a filesystem without hard links
        logger.debug("hard link for %s failed (%s); creating the key in place", path, exc)
        return _create_in_place(path, content)
    return True


def _create_in_place(path: Path, content: bytes) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, KEY_FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, KEY_FILE_MODE)
        _write_all(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_directory(path.parent)
    return True


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view) :]


def read_secret_file(path: Path, wait_for_writer: bool = False) -> bytes:
    deadline = time.monotonic() + (_PARTIAL_WAIT_S if wait_for_writer else 0.0)
    while True:
        raw = _read_key_file(path)
        if raw or time.monotonic() >= deadline:
            break
        time.sleep(0.01)  # we just lost the race on the no-hard-link fallback: the winner is still writing
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.endswith("\n"):
        text = text[:-1]
    if text is None or not _SEED_TEXT.fullmatch(text):
        raise IdentityError(
            f"key file {path} is corrupt: it must hold exactly 64 hex chars (a 32-byte ed25519 seed) and an "
            f"optional newline, but holds {len(raw)} bytes that are not that. Restore it from a backup, or "
            f"move it away to create a new identity (the node will get a new id)."
        )
    return bytes.fromhex(text)


def _read_key_file(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except IsADirectoryError:
        raise IdentityError(
            f"key path {path} is a directory; remove it or point the node at a file"
        ) from None
    except FileNotFoundError:
        raise IdentityError(
            f"key file {path} does not exist (a dangling symlink?); fix or remove it"
        ) from None
    except PermissionError as exc:
        raise IdentityError(
            f"cannot read key file {path}: {exc.strerror}; run the node as the key's owner"
        ) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IdentityError(f"key path {path} is a directory; remove it or point the node at a file")
        if not stat.S_ISREG(info.st_mode):
            raise IdentityError(f"key path {path} is not a regular file; point the node at a key file")
        if os.name == "posix" and info.st_mode & 0o077:
            raise IdentityError(
                f"key file {path} is accessible by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"the private key may have leaked. If it has not, run: chmod 600 {path}"
            )
        return os.read(fd, _MAX_KEY_FILE_BYTES)
    finally:
        os.close(fd)
