"""Campaign records in the workspace: definitions, sticky arm assignments, workspace settings.

Tables (created idempotently):

- ``crm_campaigns``: one row per campaign (segment, arms and weights, holdout percent, salt, cost,
  the run that created it and the last run that refreshed it, the start date results count from);
- ``crm_campaign_members``: one row per (campaign, customer): the arm, the run that assigned it,
  the customer's send status in the segment run that assigned it. Rows are never rewritten: a
  customer keeps the arm of the first run that saw them (sticky), reruns only add newcomers;
- ``crm_campaign_settings``: workspace-wide values, today the global control percent and salt
  (the global control must be the same group for every campaign).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from crmtool.errors import UsageError

if TYPE_CHECKING:
    import duckdb

SCHEMA = """
CREATE TABLE IF NOT EXISTS crm_campaigns (
    name VARCHAR PRIMARY KEY, segment VARCHAR NOT NULL, arms JSON NOT NULL,
    holdout_percent DOUBLE NOT NULL, global_control_percent DOUBLE NOT NULL, salt VARCHAR NOT NULL,
    cost DOUBLE, start_date DATE NOT NULL, created_run VARCHAR NOT NULL, updated_run VARCHAR NOT NULL,
    source_run VARCHAR
);
CREATE TABLE IF NOT EXISTS crm_campaign_members (
    campaign VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, arm VARCHAR NOT NULL,
    assigned_run VARCHAR NOT NULL, segment_status VARCHAR, PRIMARY KEY (campaign, customer_id)
);
CREATE TABLE IF NOT EXISTS crm_campaign_settings (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
"""

#: arms that receive the campaign are the variants; these never do
HOLDOUT = "holdout"
GLOBAL_CONTROL = "global_control"
OTHER_HOLDOUT = "other_holdout"  # held out by the segment run for another campaign: not analysed
NOT_SENT = (HOLDOUT, GLOBAL_CONTROL, OTHER_HOLDOUT)
DEFAULT_GLOBAL_CONTROL = 5.0
GLOBAL_SALT = "crmtool:global-control"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCHEMA)


@dataclass(frozen=True)
class Campaign:
    """A stored campaign definition."""

    name: str
    segment: str
    arms: tuple[tuple[str, float], ...]  # (variant name, weight), weights sum to 1
    holdout_percent: float
    global_control_percent: float
    salt: str
    cost: float | None
    start_date: date
    created_run: str
    updated_run: str
    source_run: str | None

    @property
    def variant_names(self) -> list[str]:
        return [a for a, _ in self.arms]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "segment": self.segment,
            "arms": {a: w for a, w in self.arms},
            "holdout_percent": self.holdout_percent,
            "global_control_percent": self.global_control_percent,
            "cost": self.cost,
            "start_date": self.start_date.isoformat(),
            "created_run": self.created_run,
            "updated_run": self.updated_run,
            "source_run": self.source_run,
        }


def load(con: duckdb.DuckDBPyConnection, name: str) -> Campaign | None:
    ensure_schema(con)
    rows = con.execute(
        "SELECT name, segment, arms, holdout_percent, global_control_percent, salt, cost, start_date, "
        "created_run, updated_run, source_run FROM crm_campaigns WHERE name = ?",
        [name],
    ).fetchall()
    if not rows:
        return None
    r = rows[0]
    arms = tuple((str(a), float(w)) for a, w in json.loads(r[2]))
    return Campaign(str(r[0]), str(r[1]), arms, float(r[3]), float(r[4]), str(r[5]),
                    None if r[6] is None else float(r[6]), r[7], str(r[8]), str(r[9]), r[10])


def require(con: duckdb.DuckDBPyConnection, name: str) -> Campaign:
    found = load(con, name)
    if found is None:
        names = [r[0] for r in con.execute("SELECT name FROM crm_campaigns ORDER BY 1").fetchall()]
        raise UsageError(
            f"no campaign named {name!r} in this workspace",
            ("campaigns: " + ", ".join(names)) if names else "record one with 'crmtool campaign start'",
        )
    return found


def save(con: duckdb.DuckDBPyConnection, c: Campaign) -> None:
    con.execute("DELETE FROM crm_campaigns WHERE name = ?", [c.name])
    con.execute(
        "INSERT INTO crm_campaigns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [c.name, c.segment, json.dumps([list(a) for a in c.arms]), c.holdout_percent,
         c.global_control_percent, c.salt, c.cost, c.start_date, c.created_run, c.updated_run, c.source_run],
    )


def global_control(con: duckdb.DuckDBPyConnection, requested: float | None) -> tuple[float, str]:
    """The workspace's global control (percent, salt): fixed by the first campaign, the same after.

    A later campaign may repeat the percent or leave it out; asking for another one is an error,
    since a global control that changed would no longer be held out of every campaign."""
    ensure_schema(con)
    stored = dict(con.execute("SELECT key, value FROM crm_campaign_settings").fetchall())
    if "global_control_percent" in stored:
        percent = float(stored["global_control_percent"])
        if requested is not None and abs(requested - percent) > 1e-9:
            raise UsageError(
                f"--global-control {requested:g}%: this workspace's global control is {percent:g}%",
                "the global control is the same group for every campaign; leave the option out",
            )
        return percent, str(stored["global_control_salt"])
    percent = DEFAULT_GLOBAL_CONTROL if requested is None else requested
    con.execute("INSERT INTO crm_campaign_settings VALUES ('global_control_percent', ?), "
                "('global_control_salt', ?)", [repr(percent), GLOBAL_SALT])
    return percent, GLOBAL_SALT

