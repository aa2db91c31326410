"""Secrets the app must use again later (a source's API token), encrypted at
rest with a key derived from SECRET_KEY. A changed SECRET_KEY makes the kept
tokens unreadable: `open_secret` then answers None and the token has to be
entered again."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

KEY_PURPOSE = b"kolable.secret_box.v1:"


def _fernet() -> Fernet:
    digest = hashlib.sha256(KEY_PURPOSE + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal_secret(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode("ascii")


def open_secret(sealed: str) -> str | None:
    try:
        return _fernet().decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        return None
