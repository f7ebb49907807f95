"""Test credentials made for real: self-signed certificates by the openssl CLI, Secret-shaped volumes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

OPENSSL = shutil.which("openssl")


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for localhost/127.0.0.1, valid one day: (cert, key)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [OPENSSL or "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key


def secret_volume(root: Path, keys: dict[str, str], *, version: str = "v1") -> Path:
    """A directory laid out as the kubelet mounts a Secret: keys are symlinks through ``..data``.

    Called again with a new ``version``, it updates the volume as the kubelet does: the new keys go
    into a new ``..<version>`` directory and ``..data`` is swapped to it atomically.
    """
    root.mkdir(exist_ok=True)
    data = root / f"..{version}"
    data.mkdir()
    for key, value in keys.items():
        (data / key).write_text(value)
    tmp = root / "..data_tmp"
    tmp.symlink_to(data.name)
    tmp.replace(root / "..data")
    for key in keys:
        link = root / key
        if not link.is_symlink():
            link.symlink_to(Path("..data") / key)
    return root
