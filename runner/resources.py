"""What the runner finds on its host: its data directories (``templates/``, ``docker/``, ``runner/probes``) in a
checkout or a wheel, the CA bundle handed to image builds and index queries, and file hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """``templates`` or ``docker``: inside the wheel (``runner/_data``) or at the top of a checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"runner data directory {name!r} not found next to {_PACKAGE}")


def probes_dir() -> Path:
    return _PACKAGE / "probes"


def schema_path() -> Path:
    return _PACKAGE / "matrix" / "schema" / "matrix.schema.json"


CA_BUNDLE_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
)


def ca_bundle_path() -> Path | None:
    """The host's CA bundle: what pip/requests are told to trust, else the system's."""
    for var in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return next((Path(c) for c in CA_BUNDLE_CANDIDATES if Path(c).is_file()), None)


def read_ca_bundle() -> bytes | None:
    """The host's CA bundle, handed to image builds."""
    path = ca_bundle_path()
    return path.read_bytes() if path else None


def sha256_file(path: Path) -> str:
    """A file's SHA-256, a block at a time: the host hashes archives, it does not parse them."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
