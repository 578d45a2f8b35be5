"""Audience files for ad platforms: the platforms' normalisation and hashing live in
:mod:`crmtool.identity.platforms` (the identity layer), so erasure can find their rows too."""

from crmtool.identity.platforms import (
    PLATFORMS,
    hash_email,
    hash_phone,
    normalise_email,
    normalise_phone,
    sha256_hex,
)

__all__ = ["PLATFORMS", "hash_email", "hash_phone", "normalise_email", "normalise_phone", "sha256_hex"]
