"""The ``docextract`` command: serve the API, migrate the database, manage keys and schemas.

The commands live in the modules of this package, one concern each; this one defines the group
and registers them, so the console script ``app.cli:main`` and ``python -m app`` see them all.
Modules (not the commands) are imported here, so ``app.cli.serve`` stays the module's name."""

from __future__ import annotations

import click

from app import __version__
from app.cli import db, documents, evaluation, keys, schemas, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="docextract")
def main() -> None:
    """docextract: schema-valid JSON from business documents.

    Configuration comes from DOCEXTRACT_* environment variables (see the README).
    """


main.add_command(serve.serve)
main.add_command(serve.worker)
main.add_command(db.db)
main.add_command(keys.keys)
main.add_command(schemas.schemas)
main.add_command(documents.analyze)
main.add_command(documents.extract)
main.add_command(evaluation.evaluate_command)
main.add_command(evaluation.calibrate)
main.add_command(evaluation.leave_one_set_out_command)
