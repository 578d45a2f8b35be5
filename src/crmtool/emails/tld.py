"""Valid top-level domains, offline.

Source of truth: the ICANN section of the Public Suffix List, as shipped in the PyPI package
``publicsuffixlist`` (snapshot 2026-10-22), reduced to top-level labels in ``crmtool/data/
emails_tlds.txt`` (see the header of that file). A retired TLD (e.g. ``.zr``) or a made-up one
(``.con``) is not in it.
"""

from __future__ import annotations

from functools import cache

from crmtool.emails.lists import builtin


@cache
def valid_tlds() -> frozenset[str]:
    """Every delegated TLD in ASCII form (``com``, ``es``, ``xn--p1ai`` ...)."""
    return frozenset(builtin("tlds"))


def tld_ok(ascii_domain: str) -> bool:
    """The last label of ``ascii_domain`` is a delegated TLD."""
    return ascii_domain.rsplit(".", 1)[-1].lower() in valid_tlds()
