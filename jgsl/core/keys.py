"""Session keys: 128-bit random, never derived from time (the original's were guessable)."""

import secrets


def new_key() -> str:
    """A fresh 128-bit session key as 32 hex digits."""
    return secrets.token_hex(16)
