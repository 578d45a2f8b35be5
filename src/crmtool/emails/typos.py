"""Typo domains: an address on ``gmial.com`` or ``hotmail.con`` was meant for a popular provider.

Source of truth: the list of consumer providers in ``crmtool/data/emails_providers.txt`` (global
and Spanish ISPs) and the offline TLD list. Three detectors, tried in order, each giving the
corrected domain:

1. *TLD slip*: the TLD is not a delegated TLD and a known slip (``con``, ``cmo``, ``comm`` ...) or
   a common TLD of 3+ letters at one edit (OSA distance) fixes it: ``empresa.con`` -> ``empresa.com``
   (two-letter TLDs are never guessed: ``.zr`` is one edit from half the ccTLDs);
2. *misplaced dot*: the domain without dots equals a provider without dots: ``gmai.lcom``;
   a doubled TLD is dropped (``gmail.com.com``); a provider's name on an undelegated TLD gets
   the provider's closest TLD (``live.fe`` -> ``live.fr``);
3. *near a provider*: the OSA distance (edits, with swaps of neighbours counting one) to a
   provider whose name has at least 5 letters is 1 (2 for names of 10 characters or more, when
   the first letter agrees);
   a provider's name on a wrong but real TLD only counts for the classic slips (``gmail.co``,
   ``hotmail.cm``) since ``yahoo.dk`` is as real as ``yahoo.de``.

Never flagged: the providers themselves and the allow-list (``emails_allow.txt`` built in, plus
the user's ``allow_domains.txt``), e.g. ``mail.com`` and ``email.com`` which are real and one
edit away from ``gmail.com``.
"""

from __future__ import annotations

from collections.abc import Iterable

from crmtool.emails.tld import valid_tlds

#: TLD slips people make, with the TLD they meant
TLD_SLIPS = {
    "con": "com",
    "cmo": "com",
    "comm": "com",
    "cpm": "com",
    "vom": "com",
    "xom": "com",
    "ocm": "com",
    "coom": "com",
    "comn": "com",
    "copm": "com",
    "cim": "com",
    "clm": "com",
    "conm": "com",
    "c0m": "com",
    "nett": "net",
    "nte": "net",
    "ner": "net",
    "orgg": "org",
    "ogr": "org",
    "ess": "es",
    "ees": "es",
}
#: real ccTLDs that are also classic slips when they follow a provider's name
REAL_TLD_SLIPS = {"co": "com", "cm": "com", "om": "com", "ne": "net", "et": "net"}
COMMON_TLDS = ("com", "net", "org", "es", "fr", "de", "it", "pt", "eu", "info", "cat", "uk")
MIN_TARGET_NAME = 5


def _osa(a: str, b: str) -> int:
    from rapidfuzz.distance import OSA

    return int(OSA.distance(a, b))


def split_domain(domain: str) -> tuple[str, str]:
    """``(name, tld)``: ``mail.hotmail.co.uk`` -> (``mail.hotmail.co``, ``uk``)."""
    name, _, tld = domain.rpartition(".")
    return name, tld


class TypoDetector:
    """Suggest the intended domain for a mistyped one (built once, used per distinct domain)."""

    def __init__(self, providers: Iterable[str], allow: Iterable[str] = ()) -> None:
        self.providers = tuple(dict.fromkeys(p.lower() for p in providers))
        self.known = frozenset(self.providers) | frozenset(a.lower() for a in allow)
        self.dotless = {p.replace(".", ""): p for p in self.providers}
        self.by_name: dict[str, list[str]] = {}
        for p in self.providers:
            self.by_name.setdefault(split_domain(p)[0], []).append(p)
        self.targets = [
            p for p in self.providers if len(split_domain(p)[0].replace(".", "")) >= MIN_TARGET_NAME
        ]

    def _fix_tld(self, name: str, tld: str) -> str | None:
        if tld in valid_tlds():
            return None
        if tld in TLD_SLIPS:
            return TLD_SLIPS[tld]
        if len(tld) < 3:
            return None  # every two-letter string is one edit from some ccTLD: too weak to guess
        near = [t for t in COMMON_TLDS if len(t) >= 3 and _osa(tld, t) == 1]
        return near[0] if near else None

    def _near_provider(self, domain: str) -> str | None:
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        best = process.extractOne(domain, self.targets, scorer=OSA.distance, score_cutoff=2)
        if best is None:
            return None
        target, dist = best[0], int(best[1])
        limit = 2 if len(target) >= 10 else 1
        if dist == 0 or dist > limit or (dist == 2 and domain[0] != target[0]):
            return None  # two edits only when the first letter agrees: yopmail.com is not hotmail.com
        name, tld = split_domain(domain)
        tname, ttld = split_domain(target)
        if name == tname and tld != ttld and tld in valid_tlds():
            return None  # provider's name on another real TLD: handled by the slip rule only
        return target

    def suggest(self, domain: str) -> str | None:
        """The domain the user probably meant, or ``None`` when ``domain`` looks intended."""
        domain = domain.lower().rstrip(".")
        if not domain or domain in self.known:
            return None
        name, tld = split_domain(domain)
        if not name:
            return None
        if domain.replace(".", "") in self.dotless:
            return self.dotless[domain.replace(".", "")]
        if name.endswith("." + tld) and tld in valid_tlds():  # gmail.com.com -> gmail.com
            return self.suggest(name) or name
        if tld not in valid_tlds() and name in self.by_name:  # live.fe -> live.fr (closest TLD of that name)
            return min(self.by_name[name], key=lambda p: (_osa(split_domain(p)[1], tld), p))
        fixed_tld = self._fix_tld(name, tld)
        if fixed_tld is not None:
            candidate = f"{name}.{fixed_tld}"
            return self.suggest(candidate) or candidate
        if name in self.by_name and tld in REAL_TLD_SLIPS:
            wanted = f"{name}.{REAL_TLD_SLIPS[tld]}"
            return wanted if wanted in self.known else self.by_name[name][0]
        return self._near_provider(domain)
