"""Domain and local-part lists: disposable domains, role accounts, free providers, allow-list.

Sources of truth:

* disposable domains: the ``disposable-email-domains`` package (a maintained blocklist shipped
  offline, updated with each release), plus the user's own list; a subdomain of a listed domain
  is disposable too (``x.mailinator.com``);
* role accounts: ``rules/lists/role_accounts.txt`` when present, else the built-in list
  ``crmtool/data/emails_role_accounts.txt``: shared inboxes in Spanish, German, French,
  Portuguese and Italian (oficina, ventas, pedidos, vertrieb, buchhaltung, comptabilite,
  encomendas, amministrazione ...) and the maintained mixmaxhq role-address list (English and
  more; its sources and licence are in the file's header); ``pedidos.web@``, ``info-es@``: a role
  followed by a word of ``crmtool/data/emails_role_qualifiers.txt`` (plus the user's
  ``rules/lists/role_qualifiers.txt``) or by a word of at most three letters that is not a short
  name (``crmtool/data/emails_short_names.txt``: ``info.ana@`` is a person) is a role account too;
* free (consumer) providers: ``crmtool/data/emails_providers.txt``, also the typo targets;
* allow-list: domains never reported as typos or lookalikes (the user's real partners).

List files hold one entry per line; ``#`` starts a comment; blank lines are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from crmtool.errors import InputError

#: file names looked up in a lists folder (``rules/lists`` by default)
ROLE_FILE = "role_accounts.txt"
DISPOSABLE_FILE = "disposable_extra.txt"
ALLOW_FILE = "allow_domains.txt"
PROVIDERS_FILE = "free_providers_extra.txt"
QUALIFIERS_FILE = "role_qualifiers.txt"
#: the longest word after a role's name that still reads as a qualifier (info-es, admin.bcn)
SHORT_QUALIFIER = 3


def parse_list(text: str) -> list[str]:
    """Entries of a list file: lower-cased, comments and blanks dropped, order kept, no repeats."""
    seen: dict[str, None] = {}
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry:
            seen[entry] = None
    return list(seen)


def read_list(path: Path) -> list[str]:
    """A user list file, with a clear error when it cannot be read."""
    try:
        return parse_list(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: list file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: cannot read list file ({exc.__class__.__name__})", "save it as UTF-8 text"
        ) from None


@cache
def builtin(name: str) -> tuple[str, ...]:
    """A list shipped in ``crmtool/data`` (``emails_<name>.txt``)."""
    text = resources.files("crmtool").joinpath("data", f"emails_{name}.txt").read_text(encoding="utf-8")
    return tuple(parse_list(text))


@cache
def package_disposable() -> frozenset[str]:
    """The disposable-email-domains package's blocklist, minus its own allow-list."""
    import disposable_email_domains as ded

    return frozenset(d.lower() for d in ded.blocklist) - frozenset(d.lower() for d in ded.allowlist)


_SEPARATORS = re.compile(r"[._-]+")
_TRAILING_DIGITS = re.compile(r"\d+$")


def role_key(local: str) -> str:
    """How a local part is matched against the role list: ``Info.2@`` -> ``info``,
    ``Administración@`` -> ``administracion`` (as the SQL in emails.classify does)."""
    import unicodedata

    base = local.lower().split("+", 1)[0]
    base = "".join(c for c in unicodedata.normalize("NFKD", base) if not unicodedata.combining(c))
    return _TRAILING_DIGITS.sub("", _SEPARATORS.sub("", base))


def role_head_sql(local: str) -> tuple[str, str]:
    """SQL for the two halves of a local part ``pedidos.web``: the part before the first '.', '-'
    or '_' and the rest, each keyed like :func:`role_key` (``''`` when there is no separator)."""
    base = f"strip_accents(lower(split_part({local}, '+', 1)))"
    head = f"regexp_replace(regexp_extract({base}, '^([^._-]*)[._-]', 1), '[0-9]+$', '')"
    rest = (f"regexp_replace(regexp_replace(regexp_extract({base}, '^[^._-]*[._-]+(.*)$', 1), '[._-]+', '', 'g'), "
            "'[0-9]+$', '')")
    return head, rest


@dataclass(frozen=True)
class EmailLists:
    """Every list the classifier uses; build with :meth:`load`."""

    disposable: frozenset[str]
    roles: frozenset[str]
    providers: tuple[str, ...]
    allow: frozenset[str] = field(default_factory=frozenset)
    #: words after a role's name and a separator that keep it a role account (pedidos.web)
    role_qualifiers: frozenset[str] = field(default_factory=lambda: frozenset(builtin("role_qualifiers")))
    #: names of three letters or fewer: after a role's name they are a person (info.ana), not a qualifier
    short_names: frozenset[str] = field(default_factory=lambda: frozenset(builtin("short_names")))

    @classmethod
    def load(
        cls,
        folder: Path | None = None,
        *,
        role_file: Path | None = None,
        disposable_files: tuple[Path, ...] = (),
        allow_files: tuple[Path, ...] = (),
        extra_disposable: tuple[str, ...] = (),
        extra_allow: tuple[str, ...] = (),
    ) -> EmailLists:
        """Built-in lists, extended (or, for roles, replaced) by the files of ``folder``."""
        roles: list[str] = list(builtin("role_accounts"))
        disposable = set(package_disposable())
        providers = list(builtin("providers"))
        qualifiers = set(builtin("role_qualifiers"))
        allow: set[str] = {d.lower() for d in extra_allow}
        disposable.update(d.lower() for d in extra_disposable)
        if folder is not None and folder.is_dir():
            if (folder / ROLE_FILE).exists() and role_file is None:
                role_file = folder / ROLE_FILE
            if (folder / DISPOSABLE_FILE).exists():
                disposable.update(read_list(folder / DISPOSABLE_FILE))
            if (folder / ALLOW_FILE).exists():
                allow.update(read_list(folder / ALLOW_FILE))
            if (folder / PROVIDERS_FILE).exists():
                providers.extend(p for p in read_list(folder / PROVIDERS_FILE) if p not in providers)
            if (folder / QUALIFIERS_FILE).exists():
                qualifiers.update(read_list(folder / QUALIFIERS_FILE))
        if role_file is not None:
            roles = read_list(role_file)
        for f in disposable_files:
            disposable.update(read_list(f))
        for f in allow_files:
            allow.update(read_list(f))
        return cls(
            frozenset(disposable - allow),
            frozenset(role_key(r) for r in roles),
            tuple(providers),
            frozenset(allow),
            frozenset(role_key(q) for q in qualifiers),
            frozenset(role_key(n) for n in builtin("short_names")),
        )

    def is_disposable(self, domain: str) -> bool:
        """``domain`` or any parent domain of it is on the disposable list."""
        labels = domain.lower().split(".")
        return any(".".join(labels[i:]) in self.disposable for i in range(len(labels) - 1))
