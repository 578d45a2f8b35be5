"""Erasure (right to be forgotten): remove people everywhere, keep only keyed proof, never let them back.

The steps, one module each:

1. :mod:`~crmtool.privacy.erase.requests` - read the request file (any identifier: customer id,
   email, phone, NIF/NIE/CIF) into canonical forms, in a private in-memory database;
2. :mod:`~crmtool.privacy.erase.match` - person keys of every customer table; each request ends
   *erased*, *not found* or *ambiguous*; the erasure widens to the whole person (dedupe cluster,
   customer id) and to their other identifiers;
3. :mod:`~crmtool.privacy.erase.outputs` - rewrite every registered file crmtool wrote that is
   still as it was written;
4. :mod:`~crmtool.privacy.erase.purge` - delete the rows, compact the workspace file, and keep
   erased people out of later loads (:func:`load_without_erased`, :func:`drop_erased`);
5. :mod:`~crmtool.privacy.erase.record` - tokens, suppressions and audit entries;
6. :mod:`~crmtool.privacy.erase.check` - ``erase --check``: prove each request of a file.
"""

from crmtool.privacy.erase.check import CheckResult, RequestCheck, check_erasures
from crmtool.privacy.erase.match import ALREADY_ERASED, AMBIGUOUS, ERASED, NOT_FOUND
from crmtool.privacy.erase.purge import compact_workspace_file, drop_erased, load_without_erased
from crmtool.privacy.erase.requests import REF_NAMES
from crmtool.privacy.erase.run import EraseResult, erase

__all__ = [
    "ALREADY_ERASED",
    "AMBIGUOUS",
    "ERASED",
    "NOT_FOUND",
    "REF_NAMES",
    "CheckResult",
    "EraseResult",
    "RequestCheck",
    "check_erasures",
    "compact_workspace_file",
    "drop_erased",
    "erase",
    "load_without_erased",
]
