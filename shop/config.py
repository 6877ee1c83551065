"""Where the instance lives and where its secrets come from.

An owner runs one shop per instance folder. Secrets are generated on the first run and kept in
files readable only by the owner (0600), unless the environment supplies them, which is how a
container or a secrets manager hands them in.
"""

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class InstanceConfig:
    path: Path
    secret_key: str
    master_key: bytes
    database_url: str
    redis_url: str | None
    safe_mode: bool
    public_url: str | None
    trusted_proxies: int


def instance_path() -> Path:
    return Path(os.environ.get("SHOP_INSTANCE") or ROOT / "instance").resolve()


def _read_or_create(path: Path, make) -> str:
    """Read a secret file, creating it with mode 0600 when missing.

    The value is written to a private temporary file first and then hard-linked into place,
    so the file appears complete or not at all: processes starting at once (the web server
    and the worker) agree on one value, the loser of the race reads what the winner wrote,
    and a crash mid-write never leaves an empty secret behind.
    """
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(make() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    value = path.read_text().strip()
    if not value:
        raise RuntimeError(f"secret file {path} is empty; delete it to regenerate")
    return value


def _master_key(raw: str) -> bytes:
    key = bytes.fromhex(raw.strip())
    if len(key) != 32:
        raise RuntimeError("the master key must be 64 hex characters (256 bits)")
    return key


def load_config() -> InstanceConfig:
    path = instance_path()
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    secret_key = os.environ.get("SHOP_SECRET_KEY") or _read_or_create(
        path / "secret_key", lambda: secrets.token_hex(32)
    )
    master_raw = os.environ.get("SHOP_MASTER_KEY") or _read_or_create(
        path / "master_key", lambda: secrets.token_hex(32)
    )
    database_url = os.environ.get("SHOP_DATABASE_URL") or f"sqlite:///{path / 'shop.sqlite3'}"
    return InstanceConfig(
        path=path,
        secret_key=secret_key,
        master_key=_master_key(master_raw),
        database_url=database_url,
        redis_url=os.environ.get("SHOP_REDIS_URL") or None,
        safe_mode=os.environ.get("SHOP_SAFE_MODE", "") not in ("", "0", "false"),
        public_url=(os.environ.get("SHOP_PUBLIC_URL") or "").rstrip("/") or None,
        trusted_proxies=_proxy_count(os.environ.get("SHOP_TRUSTED_PROXIES", "0")),
    )


def _proxy_count(raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) > 5:
        raise RuntimeError("SHOP_TRUSTED_PROXIES must be the number of proxies in front (0-5)")
    return int(raw)
