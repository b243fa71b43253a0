"""What every part of the double uses: the JSON type, the CDN addresses, shortcodes, TOTP codes, the
password key, random tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import struct
import threading
import time
from datetime import datetime
from typing import Any

JSON = dict[str, Any]


STORY_TTL = 24 * 3600
CDN = "https://scontent-iad3-1.cdninstagram.com/v/t51.2885-15"
PROFILE_CDN = "https://scontent-iad3-1.cdninstagram.com/v/t51.2885-19"
SHORTCODE_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


_rsa_lock = threading.Lock()

_rsa_key: Any = None  # Cryptodome RSA key, generated once per process on the first password login


def _password_key() -> Any:
    global _rsa_key
    with _rsa_lock:
        if _rsa_key is None:
            from Cryptodome.PublicKey import RSA

            _rsa_key = RSA.generate(1024)  # noqa: S505  # test-only key; Instagram uses 2048, 1024 is faster
        return _rsa_key


def shortcode(pk: int) -> str:
    """Instagram's media shortcode (``code``) for a media pk."""
    chars = []
    while pk:
        pk, rem = divmod(pk, 64)
        chars.append(SHORTCODE_ALPHABET[rem])
    return "".join(reversed(chars)) or "A"


def totp_code(seed: str, at: float | None = None) -> str:
    """RFC 6238 code (SHA1, 6 digits, 30 s): the same as instagrapi's ``totp_generate_code(seed)``."""
    counter = int((time.time() if at is None else at) // 30)
    padded = seed + "=" * (-len(seed) % 8)
    digest = hmac.new(base64.b32decode(padded, casefold=True), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 1_000_000).zfill(6)


def _rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _ts(value: int | float | datetime | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)
