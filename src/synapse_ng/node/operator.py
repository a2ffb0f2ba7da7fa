"""The operator's credential: what the routes that make a node sign or act (proposals, votes, rollbacks,
tasks) ask for. Peers never need it: they hand in messages signed by members.

    token = operator_token(data_dir)         created once at first start: DATA/operator.token, mode 0600
    read_operator_token(data_dir, explicit)  what a client uses: explicit > $SYNAPSE_OPERATOR_TOKEN > the file
    bearer(token) -> {"Authorization": ...}  the header a client sends
    is_operator(token, header) -> bool       constant-time comparison

The token is 32 random bytes in hex, written the way the node's identity key is (a private temp file
hard-linked into place), so it is never half-written and never readable by other users.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from ..errors import UsageError
from ..settings import settings
from .identity import IdentityError, create_secret_file, read_secret_file

TOKEN_FILE = "operator.token"
TOKEN_ENV = "SYNAPSE_OPERATOR_TOKEN"


def operator_token(data_dir: Path | str) -> str:
    """This node's operator token, created on first use."""
    path = Path(data_dir) / TOKEN_FILE
    if not path.exists() and not path.is_symlink():
        path.parent.mkdir(parents=True, exist_ok=True)
        create_secret_file(path, secrets.token_bytes(32))
    try:
        return read_secret_file(path, wait_for_writer=True).hex()
    except IdentityError as error:
        raise UsageError(f"operator token: {error}") from None


def read_operator_token(data_dir: Path | str | None = None, explicit: str | None = None) -> str:
    """The token a client sends: `explicit` (a --token flag), else $SYNAPSE_OPERATOR_TOKEN, else the
    node's file."""
    if explicit:
        return explicit.strip()
    from_environment = settings().operator_token
    if from_environment:
        return from_environment
    if data_dir is None:
        raise UsageError(
            f"this command needs the node's operator token: pass --data DIR (the node's data directory), "
            f"--token TOKEN, or set {TOKEN_ENV}"
        )
    path = Path(data_dir) / TOKEN_FILE
    if not path.exists():
        raise UsageError(
            f"no operator token at {path}: start the node once (it creates the token), or pass --token"
        )
    try:
        return read_secret_file(path).hex()
    except IdentityError as error:
        raise UsageError(f"operator token: {error}") from None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def is_operator(token: str, authorization: str | None) -> bool:
    if not authorization or not authorization.startswith("Bearer "):
        return False
    return hmac.compare_digest(authorization[len("Bearer ") :].strip().encode(), token.encode())
