"""Session keys carry 128 random bits in 22 characters and do not repeat."""

import base64

from jgsl.core.keys import new_key


def test_keys_are_128_bit_and_distinct():
    keys = [new_key() for _ in range(2000)]
    assert len(set(keys)) == len(keys)
    for key in keys[:50]:
        assert len(key) == 22
        assert len(base64.urlsafe_b64decode(key + "==")) == 16
