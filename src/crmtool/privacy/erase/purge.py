"""Step 4 of an erasure: remove the people from the workspace, and keep them out of later loads.

* :func:`delete_rows` deletes the matched rows from every customer table, and the bounce events of
  their addresses (``email_bounces``).
* :func:`compact_workspace_file` rewrites the workspace file afterwards: DuckDB deletes rows
  logically, so their bytes would otherwise stay in the file.
* :func:`~crmtool.identity.load.drop_erased` and :func:`~crmtool.identity.load.load_without_erased`
  (re-exported here) keep erased people out of later loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.identity.load import drop_erased, load_without_erased
from crmtool.sqltext import ident, sql_str

__all__ = ["compact_workspace_file", "delete_rows", "drop_erased", "load_without_erased"]

if TYPE_CHECKING:
    from crmtool.privacy.erase.match import Match
    from crmtool.workspace import Workspace



def delete_rows(ws: Workspace, match: Match, removed: dict[str, int]) -> dict[str, int]:
    """Delete ``__erase_rows`` from their tables and the erased addresses' bounces; returns rows per table."""
    con = ws.con
    out = dict(removed)
    for table, n in removed.items():
        if n:
            con.execute(
                f"DELETE FROM {ident(table)} WHERE rowid IN (SELECT rid FROM __erase_rows WHERE tbl = {sql_str(table)})"
            )
    if ws.table_exists("email_bounces"):
        gone = "SELECT crm_token(value) FROM __erase_targets WHERE type = 'email'"
        n = int(con.execute(f"SELECT count(*) FROM email_bounces WHERE token IN ({gone})").fetchall()[0][0])
        if n:
            con.execute(f"DELETE FROM email_bounces WHERE token IN ({gone})")
        out["email_bounces"] = n
    return out


def compact_workspace_file(path: Path, lock_timeout: float = 60.0) -> int:
    """Rewrite a workspace file so that deleted rows are gone from its bytes too; returns the new size.

    DuckDB deletes rows logically: their old blocks stay in the file until reused. Copying the
    database into a fresh file and swapping it in (under the workspace lock) leaves no trace of
    erased people in the file. Call it after the workspace is closed (``crmtool erase`` does).
    """
    import os

    import duckdb
    from filelock import FileLock, Timeout

    from crmtool.errors import WorkspaceBusy

    if str(path) == ":memory:" or not path.is_file():
        return 0
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=lock_timeout)
    except Timeout:
        raise WorkspaceBusy(
            f"workspace {path} is in use: cannot compact it after the erasure",
            "run 'crmtool erase' again when the other run ends",
        ) from None
    tmp = path.with_name(f".{path.name}.compact.tmp")
    try:
        tmp.unlink(missing_ok=True)
        con = duckdb.connect(str(path))
        try:
            name = con.execute("SELECT current_database()").fetchall()[0][0]
            con.execute(f"ATTACH {sql_str(str(tmp))} AS __crm_compact")
            con.execute(f"COPY FROM DATABASE {ident(name)} TO __crm_compact")
            con.execute("DETACH __crm_compact")
        finally:
            con.close()
        os.replace(tmp, path)
        return path.stat().st_size
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
        lock.release()
