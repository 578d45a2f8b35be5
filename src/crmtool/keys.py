"""Keyed hashing (HMAC-SHA-256) of personal data, in Python and as a DuckDB macro.

The same key serves the audit log, erasure proofs and pseudonymised exports. It comes from, in
order: an explicit key file, ``CRMTOOL_KEY`` (the key itself), ``CRMTOOL_KEY_FILE``, or a key
file beside the workspace that crmtool creates on first use (owner-only permissions). The key
is never written to any output; outputs name it by :attr:`KeyedHasher.fingerprint`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.errors import UsageError

if TYPE_CHECKING:
    import duckdb

ENV_KEY = "CRMTOOL_KEY"
ENV_KEY_FILE = "CRMTOOL_KEY_FILE"
TOKEN_CHARS = 32  # hex characters kept from each HMAC (128 bits)
_BLOCK = 64  # SHA-256 block size


@dataclass(frozen=True)
class KeyedHasher:
    """HMAC-SHA-256 with one secret key; ``token`` gives the shortened hex used in outputs."""

    key: bytes
    source: str  # where the key came from, for messages ("env CRMTOOL_KEY", a path)
    created: bool = False  # True when this call created a new key file

    @property
    def fingerprint(self) -> str:
        """Names the key without revealing it: first 16 hex of SHA-256 over a fixed label + key."""
        return hashlib.sha256(b"crmtool-key-fingerprint:" + self.key).hexdigest()[:16]

    def token(self, value: str | None) -> str | None:
        """Keyed hash of a (normalised) value; ``None`` stays ``None``."""
        if value is None:
            return None
        return hmac.new(self.key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:TOKEN_CHARS]

    def register_sql(self, con: duckdb.DuckDBPyConnection, name: str = "crm_token") -> None:
        """Create ``name(x)`` in DuckDB computing exactly :meth:`token` (HMAC built from sha256).

        HMAC(k, m) = H((k ^ opad) || H((k ^ ipad) || m)); DuckDB's sha256 returns hex, so the inner
        digest is turned back into bytes with unhex. Tested equal to the Python implementation.
        """
        key = self.key if len(self.key) <= _BLOCK else hashlib.sha256(self.key).digest()
        key = key.ljust(_BLOCK, b"\0")
        ipad = bytes(b ^ 0x36 for b in key).hex()
        opad = bytes(b ^ 0x5C for b in key).hex()
        con.execute(
            f"CREATE OR REPLACE TEMP MACRO {name}(x) AS CASE WHEN x IS NULL THEN NULL ELSE "
            f"left(sha256(unhex('{opad}') || unhex(sha256(unhex('{ipad}') || encode(CAST(x AS VARCHAR))))),"
            f" {TOKEN_CHARS}) END"
        )


def _read_key_file(path: Path) -> bytes:
    try:
        raw = path.read_bytes().strip()
    except FileNotFoundError:
        raise UsageError(f"key file {path} does not exist",
                         "point --key-file or CRMTOOL_KEY_FILE at a readable key") from None
    except OSError as exc:
        raise UsageError(f"key file {path} cannot be read ({exc.strerror})", "check its permissions") from None
    if len(raw) < 16:
        raise UsageError(f"key file {path} holds fewer than 16 bytes", "use a long random key, e.g. 64 hex characters")
    return raw


def load_key(key_file: Path | None = None, default_file: Path | None = None, *, create: bool = True) -> KeyedHasher:
    """Find the key; create ``default_file`` (0600) when no key is configured anywhere, or with
    ``create`` False use a random key that lives only in memory (a command that changes nothing)."""
    if key_file is not None:
        return KeyedHasher(_read_key_file(key_file), str(key_file))
    env_key = os.environ.get(ENV_KEY)
    if env_key:
        if len(env_key) < 16:
            raise UsageError(f"{ENV_KEY} is shorter than 16 characters", "use a long random key")
        return KeyedHasher(env_key.encode("utf-8"), f"environment {ENV_KEY}")
    env_file = os.environ.get(ENV_KEY_FILE)
    if env_file:
        return KeyedHasher(_read_key_file(Path(env_file)), env_file)
    if default_file is None:
        raise UsageError("no key configured", f"set {ENV_KEY} or {ENV_KEY_FILE}, or pass --key-file")
    if default_file.exists():
        return KeyedHasher(_read_key_file(default_file), str(default_file))
    if not create:
        return KeyedHasher(secrets.token_hex(32).encode("ascii"), "ephemeral (in memory, not saved)")
    default_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(default_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return KeyedHasher(_read_key_file(default_file), str(default_file), created=True)
