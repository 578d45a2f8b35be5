"""The audit log: one per workspace, a hash chain of run records with keyed seals, and per-run
columnar change sets (docs/decisions/0008-audit-format.md).

Writing: ``AuditWriter(log_dir(ws, out), run_id, ws.hasher)``, then ``add({...})`` for events,
``add_set(con, kind, query, order_by)`` for bulk entries, ``seal(summary)`` (or ``abort()``).
Reading: :func:`iter_entries` (chain records), :func:`show` (by record, rule, run),
:func:`verify_log`.
"""

from crmtool.audit.format import CHAIN, GENESIS, TOKEN_PREFIX, json_str_sql
from crmtool.audit.query import iter_entries, show
from crmtool.audit.verify import VerifyResult, verify_log
from crmtool.audit.writer import AuditWriter, log_dir

__all__ = ["CHAIN", "GENESIS", "TOKEN_PREFIX", "AuditWriter", "VerifyResult", "iter_entries", "json_str_sql",
           "log_dir", "show", "verify_log"]
