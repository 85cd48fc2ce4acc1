"""The ``docextract`` command against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from click.testing import CliRunner, Result

from app.cli import main
from tests.helpers import object_schema


async def cli(database_url: str, data_dir: Path, *args: str) -> Result:
    """Run the command in a thread: it calls asyncio.run, which needs a thread without a loop."""
    env = {
        "DOCEXTRACT_DATABASE_URL": database_url,
        "DOCEXTRACT_DATA_DIR": str(data_dir),
        "DOCEXTRACT_LOG_LEVEL": "WARNING",
    }
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env, catch_exceptions=False)


async def test_db_upgrade_and_current(database_url: str, tmp_path: Path) -> None:
    behind = await cli(database_url, tmp_path, "db", "current")
    assert behind.exit_code == 1 and "run `docextract db upgrade`" in behind.output
    upgraded = await cli(database_url, tmp_path, "db", "upgrade")
    assert upgraded.exit_code == 0 and re.search(r"at migration (\w+) \(newest: \1\)", upgraded.output)
    current = await cli(database_url, tmp_path, "db", "current")
    assert current.exit_code == 0 and "run `docextract db upgrade`" not in current.output


async def test_keys_lifecycle(database_url: str, tmp_path: Path) -> None:
    created = await cli(database_url, tmp_path, "keys", "create", "--name", "erp", "--scope", "extract")
    assert created.exit_code == 0, created.output
    fields = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
    key_id, key = fields["id"].strip(), fields["key"].strip()
    assert key.startswith(f"dxk_{key_id}_")
    listed = await cli(database_url, tmp_path, "keys", "list")
    assert key_id in listed.output and "erp" in listed.output and key not in listed.output
    revoked = await cli(database_url, tmp_path, "keys", "revoke", key_id)
    assert revoked.exit_code == 0 and f"revoked {key_id}" in revoked.output
    assert key_id not in (await cli(database_url, tmp_path, "keys", "list")).output
    assert key_id in (await cli(database_url, tmp_path, "keys", "list", "--all")).output
    missing = await cli(database_url, tmp_path, "keys", "revoke", "nope")
    assert missing.exit_code == 1 and "No API key has the id 'nope'" in missing.output
    bad_scope = await cli(database_url, tmp_path, "keys", "create", "--name", "x", "--scope", "root")
    assert bad_scope.exit_code == 2


async def test_schemas_add_list_show(database_url: str, tmp_path: Path) -> None:
    plain = tmp_path / "supplier_invoice.json"
    plain.write_text(json.dumps({**object_schema(), "description": "Supplier invoices"}))
    added = await cli(database_url, tmp_path, "schemas", "add", str(plain))
    assert added.exit_code == 0 and "added supplier_invoice@1" in added.output
    again = await cli(database_url, tmp_path, "schemas", "add", str(plain))
    assert again.exit_code == 0 and "unchanged, already supplier_invoice@1" in again.output

    envelope = tmp_path / "anything.json"
    envelope.write_text(
        json.dumps(
            {
                "name": "supplier_invoice",
                "schema": object_schema(iban={"type": "string", "pattern": "^[A-Z]{2}", "maxLength": 34}),
            }
        )
    )
    v2 = await cli(database_url, tmp_path, "schemas", "add", str(envelope))
    assert v2.exit_code == 0 and "added supplier_invoice@2" in v2.output
    assert "checked after decoding: /properties/iban/pattern" in v2.output

    listed = await cli(database_url, tmp_path, "schemas", "list")
    row = next(line for line in listed.output.splitlines() if line.startswith("supplier_invoice"))
    assert row.split()[1:3] == ["2", "cli"] and "Supplier invoices" in row
    shown = await cli(database_url, tmp_path, "schemas", "show", "supplier_invoice@1")
    assert json.loads(shown.stdout) == {**object_schema(), "description": "Supplier invoices"}


async def test_schemas_add_reports_problems_with_pointers(database_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "object", "properties": {"a": {"$ref": "https://x.test/s.json"}}}))
    result = await cli(database_url, tmp_path, "schemas", "add", str(bad))
    assert result.exit_code == 1
    assert "/schema/properties/a/$ref" in result.output
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = await cli(database_url, tmp_path, "schemas", "add", str(broken))
    assert result.exit_code == 1 and "is not valid JSON" in result.output
    assert "bad" not in (await cli(database_url, tmp_path, "schemas", "list")).output


async def test_configuration_errors_name_the_variable(tmp_path: Path) -> None:
    result = await cli("mysql://root@localhost/x", tmp_path, "keys", "list")
    assert result.exit_code == 1
    assert "DOCEXTRACT_DATABASE_URL" in result.output and "postgresql://" in result.output


async def test_unreachable_database_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = await cli("postgresql://nobody@127.0.0.1:1/none", tmp_path, "keys", "list")
    assert result.exit_code == 1
    assert "Cannot reach the database" in result.output
