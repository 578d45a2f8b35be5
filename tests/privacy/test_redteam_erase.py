"""Red team: every erasure request ends as erased, not found or ambiguous, and a request whose address
cannot be read as one address is never reported as a plain "not found" (the person may be held)."""

from __future__ import annotations

from pathlib import Path

from .conftest import EXAMPLES, RULES, cli


def test_every_request_of_an_odd_file_is_accounted_for(tmp_path: Path) -> None:
    assert cli("clean", EXAMPLES / "clientes.csv", "--rules", RULES, "--out", tmp_path / "out")[0] in (0, 1)
    # a UTF-8 BOM, CRLF, a blank line, a repeated request, a display name, address lists, a NIF with a
    # no-break space and a request with nothing usable
    (tmp_path / "req.csv").write_bytes(
        "\ufeffrequest_ref,email,national_id\r\nR1,Pierre Jim\u00e9nez <pierre.jimenez7018@hotmail.com>,\r\n\r\n"
        "R2,hans.lopez8365@gmail.com; otra@y.es,\r\nR3,,60712825\u00a0r\r\nR3,,60712825\u00a0r\r\nR4,,\r\n"
        "R5,nadie@y.es,\r\nR6,\"maria.silva3173@telefonica.net, manuel.alvarez2282@icloud.com\",\r\n"
        "R7,maria.silva3173@telefonica.net otra@y.es,\r\n".encode())
    code, out = cli("erase", "--requests", tmp_path / "req.csv")
    lines = {line.split(":")[0]: line for line in out.splitlines() if line.startswith("R")}
    assert set(lines) == {"R1", "R2", "R3", "R4", "R5", "R6", "R7"}, out
    # every person a request names is found, in whatever form the address was written
    assert "erased" in lines["R1"] and "erased" in lines["R2"] and "erased" in lines["R3"], out
    assert "ambiguous" in lines["R6"], out  # two customers: a person decides
    # an address that is not one address: never a bare not_found, the run says a person must look
    assert "no usable identifier" in lines["R7"], out
    assert "no usable identifier" in lines["R4"], out
    assert lines["R5"].strip() == "R5: not_found", out
    assert code == 1
