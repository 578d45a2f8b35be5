"""Issue 16, emails: role inboxes written with a qualifier after a separator (pedidos.web,
secretaria.geral, info-es) are role accounts; a person at a department (ventas.maria, info.ana)
is not."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from crmtool.emails.classify import ClassifyOptions, classify_values
from crmtool.emails.lists import EmailLists

ROLES = ["pedidos.web", "secretaria.geral", "info-es", "ventas.online", "administracion_central", "Ventas-1",
         "oficina", "info+es", "Contabilidad.Madrid", "atención.cliente", "vertrieb-de2", "pedidos.bcn"]
PEOPLE = ["ventas.maria", "info.ana", "admin-gil", "ana.garcia", "gil.ana", "oficina.lopez", "maria.ventas",
          "pedidosmaria", "info.joaquin", "ventas_paz"]


def _roles(values: list[str], lists: EmailLists | None = None) -> dict[str, bool]:
    con = duckdb.connect()
    emails = [f"{v}@empresa.es" for v in values]
    con.register("vals", pa.table({"value": pa.array(emails, pa.string())}))
    con.execute("CREATE TABLE v AS SELECT * FROM vals")
    result = classify_values(con, "v", ClassifyOptions(lists=lists or EmailLists.load()))
    found = {value: any(r.startswith("role") for r in reasons or [])
             for value, reasons in con.execute(f"SELECT value, reasons FROM {result.table}").fetchall()}
    con.close()
    return {v: found[f"{v}@empresa.es"] for v in values}


def test_roles_with_a_qualifier_are_role_accounts() -> None:
    assert _roles(ROLES) == dict.fromkeys(ROLES, True)


def test_a_person_at_a_department_is_not() -> None:
    assert _roles(PEOPLE) == dict.fromkeys(PEOPLE, False)


@pytest.mark.parametrize("extra", [True, False])
def test_the_user_adds_qualifiers_in_the_lists_folder(tmp_path: Path, extra: bool) -> None:
    if extra:
        (tmp_path / "role_qualifiers.txt").write_text("# our shops\nhotel\n", encoding="utf-8")
    lists = EmailLists.load(tmp_path)
    assert _roles(["reservas.hotel"], lists) == {"reservas.hotel": extra}
