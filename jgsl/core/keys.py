"""Session keys: 128-bit random, never derived from time (the original's were guessable)."""

import secrets


def new_key() -> str:
    """A fresh 128-bit session key: 22 URL-safe base64 characters (hex would take 32, and
    the node key rides in every update)."""
    return secrets.token_urlsafe(16)
