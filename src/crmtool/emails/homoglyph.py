"""Lookalike domains: Unicode confusables, mixed scripts, punycode that decodes to a lookalike.

Source of truth: the Unicode confusables and script data of the ``confusable-homoglyphs``
package (Unicode TR39 tables). Per distinct domain (in its Unicode form, so ``xn--`` labels are
already decoded by email-validator):

* ``mixed_script``: a label mixes letters of two scripts (Latin ``paypal`` with a Cyrillic ``а``),
  except the mixes that are normal writing per UTS #39 (Japanese Han + kana, Korean Han + Hangul);
* ``homoglyph``: replacing every confusable character by its Latin lookalike (the *skeleton*)
  gives a different, all-ASCII domain — a domain that reads as Latin but is not — or a popular
  provider / allow-listed domain; ASCII digit tricks (``0`` for ``o``, ``1`` for ``l``, ``rn``
  for ``m``) count only when they land on a provider (``hotmai1.com``). The skeleton, when it is
  a known domain, is the suggestion.

Accented Latin letters (``ñ``, ``ü``, ``é``) are not confusables: ``españa.es`` stays clean.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

_ASCII_TRICKS = (("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l"))
_NEUTRAL = {"COMMON", "INHERITED"}
#: script mixes that are normal writing (UTS #39 "highly restrictive" profile)
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


@lru_cache(maxsize=4096)
def _lookalike(ch: str) -> str | None:
    """A Latin/ASCII character ``ch`` is confusable with, or ``None``."""
    from confusable_homoglyphs import confusables

    found = confusables.is_confusable(ch, greedy=True, preferred_aliases=["latin"])
    if not found:
        return None
    for glyph in found[0]["homoglyphs"]:
        c = str(glyph["c"]).lower()
        if len(c) == 1 and c.isascii() and (c.isalnum() or c == "-"):
            return c
    return None


@lru_cache(maxsize=4096)
def _script(ch: str) -> str:
    from confusable_homoglyphs import categories

    return str(categories.alias(ch))


def mixed_script(domain: str) -> bool:
    """Some label mixes letters of more than one script."""
    for label in domain.split("."):
        scripts = {_script(c) for c in label if c.isalpha()} - _NEUTRAL
        if len(scripts) > 1 and not any(scripts <= mix for mix in _ALLOWED_MIXES):
            return True
    return False


def skeleton(domain: str) -> str:
    """``domain`` with every confusable non-ASCII character replaced by its Latin lookalike."""
    out = []
    for c in domain.lower():
        out.append(c if c.isascii() else (_lookalike(c) or c))
    return "".join(out)


class HomoglyphDetector:
    """Built once with the popular and allowed domains; :meth:`check` per distinct domain."""

    def __init__(self, known: Iterable[str]) -> None:
        self.known = frozenset(k.lower() for k in known)

    def _ascii_trick(self, domain: str) -> str | None:
        name, _, tld = domain.rpartition(".")
        for bad, good in _ASCII_TRICKS:
            if bad in name:
                candidate = f"{name.replace(bad, good)}.{tld}"
                if candidate in self.known:
                    return candidate
        return None

    def check(self, domain: str) -> tuple[bool, bool, str | None]:
        """``(homoglyph, mixed_script, suggestion)`` for a domain in Unicode form."""
        domain = domain.lower()
        if domain in self.known:
            return False, False, None
        if domain.isascii():
            trick = self._ascii_trick(domain)
            return trick is not None, False, trick
        mixed = mixed_script(domain)
        skel = skeleton(domain)
        if skel == domain:
            return False, mixed, None
        if skel in self.known:
            return True, mixed, skel
        trick = self._ascii_trick(skel) if skel.isascii() else None
        if trick is not None:
            return True, mixed, trick
        return skel.isascii(), mixed, None
