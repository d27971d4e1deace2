"""MQTT passwords for mosquitto 2: random ones, mosquitto's ``$7$`` hash (PBKDF2-SHA512) and its password
file, written through ``mosquitto_passwd -U`` when installed (the plain passwords in a 0600 file, never on a
command line) or hashed here the same way. Files are written atomically, never readable by others."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

ITERATIONS = 101  # what mosquitto_passwd 2.0 uses; the strength is in the 192-bit random passwords


class AuthError(ValueError):
    """Bad input: the message says what to fix."""


# ---- passwords ---------------------------------------------------------------------------------------

def new_password() -> str:
    return secrets.token_urlsafe(24)  # 32 characters of A-Z a-z 0-9 _ -: safe in YAML, env files, URLs


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """mosquitto 2's password-file hash: ``$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>``."""
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def find_mosquitto_passwd() -> str | None:
    for c in ("mosquitto_passwd", "/usr/bin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd"):
        path = shutil.which(c) or (c if Path(c).is_file() else None)
        if path:
            return path
    return None


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` atomically, the file never readable by others on the way."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)  # whatever the umask did
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_password_file(path: Path, logins: Sequence[tuple[str, str]], tool: str | None = "auto") -> str:
    """Write mosquitto's password file; returns how it was hashed (``mosquitto_passwd`` or ``python``).
    ``tool``: "auto" (mosquitto_passwd when installed), a path to it, or None (hash here)."""
    exe = find_mosquitto_passwd() if tool == "auto" else tool
    if exe is None:
        write_private(path, "".join(f"{u}:{mosquitto_hash(p)}\n" for u, p in logins))
        return "python"
    plain = path.with_name(f".{path.name}.plain")
    with contextlib.suppress(FileNotFoundError):
        plain.unlink()
    try:
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(f"{u}:{p}\n" for u, p in logins))
        done = subprocess.run([exe, "-U", str(plain)], capture_output=True, text=True, check=False)
        hashed = plain.read_text(encoding="utf-8").splitlines()
        if done.returncode != 0 or len(hashed) != len(logins) or not all(
                line.startswith(f"{u}:$") for line, (u, _p) in zip(hashed, logins, strict=True)):
            raise AuthError(f"{exe} -U failed (exit {done.returncode}): {done.stderr.strip()[:300]}")
        os.chmod(plain, 0o600)
        os.replace(plain, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            plain.unlink()  # never leave the plain passwords behind
    return "mosquitto_passwd"
