"""Webhook secrets: issued as `whsec_` + base64 of 32 random bytes, stored encrypted (AES-GCM under a key
derived from RELATIONS_SECRET_KEY, bound to the webhook's project and id), and used to sign deliveries
per Standard Webhooks: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body` with the decoded bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "whsec_"
SECRET_BYTES = 32
NONCE_BYTES = 12
# The key from the environment may be any string this long: it is stretched into the AES key by HKDF.
MIN_KEY_LENGTH = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


class SecretBox:
    """Encrypts secrets for storage. The associated data names the webhook, so a ciphertext copied
    into another row does not decrypt there."""

    def __init__(self, key: str) -> None:
        if len(key.encode()) < MIN_KEY_LENGTH:
            raise ValueError(f"RELATIONS_SECRET_KEY must be at least {MIN_KEY_LENGTH} bytes")
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"relations webhook secrets v1"
        ).derive(key.encode())
        self._aead = AESGCM(derived)

    @staticmethod
    def _bound(project: str, webhook_id: uuid.UUID) -> bytes:
        return f"{project}/{webhook_id}".encode()

    def seal(self, secret: str, *, project: str, webhook_id: uuid.UUID) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), self._bound(project, webhook_id))

    def open(self, sealed: bytes, *, project: str, webhook_id: uuid.UUID) -> str:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, self._bound(project, webhook_id)).decode()


def signature(secret: str, *, message_id: str, timestamp: int, body: str) -> str:
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_in_use: Iterable[str], *, message_id: str, timestamp: int, body: str) -> str:
    """`webhook-signature`: one signature per secret, space-separated (two during a rotation)."""
    return " ".join(
        signature(secret, message_id=message_id, timestamp=timestamp, body=body) for secret in secrets_in_use
    )
