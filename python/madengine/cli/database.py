"""madengine database: upload perf.csv (or a JSON file of rows) to MongoDB."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ansible_collections.rocm.madengine.plugins.module_utils.errors import EXIT_FAILURE
from madengine.cli import render
from madengine.cli.common import VerboseOpt, errors_as_messages


def database(
    file: str = typer.Option(..., "--file", "-f", help="perf.csv or a JSON file (an object or an array of objects)."),
    database_name: str = typer.Option(..., "--database", "--db", help="Database name."),
    collection: str = typer.Option(..., "--collection", "-c", help="Collection name."),
    unique_key: Optional[str] = typer.Option(
        None,
        "--unique-key",
        "-k",
        help="Comma-separated columns that identify a row (default: detected; for perf.csv run_id, model, "
        "machine_name, args, docker_image, metric, repeat).",
    ),
    batch_size: int = typer.Option(1000, "--batch-size", help="Documents per bulk write."),
    no_upsert: bool = typer.Option(False, "--no-upsert", help="Insert every row instead of updating by the key."),
    no_index: bool = typer.Option(False, "--no-index", help="Do not create an index on the unique key."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only read the file and say what would be done."),
    verbose: bool = VerboseOpt,
) -> None:
    """Upload rows to MongoDB (MONGO_HOST, MONGO_PORT, MONGO_USER, MONGO_PASSWORD or MONGO_PASSWORD_FILE,
    MONGO_AUTH_SOURCE, MONGO_AUTH_MECHANISM, MONGO_TIMEOUT_MS, or MONGO_URI); a second upload of the same file
    updates its documents instead of adding them again."""
    from ansible_collections.rocm.madengine.plugins.module_utils import mongo_upload

    with errors_as_messages(verbose):
        settings = mongo_upload.MongoSettings.from_env()
        keys = unique_key.split(",") if unique_key is not None else None
        result = mongo_upload.upload_file(
            file,
            database_name,
            collection,
            unique_key=keys,
            batch_size=batch_size,
            upsert=not no_upsert,
            index=not no_index,
            dry_run=dry_run,
            settings=settings,
        )
        where = f"{database_name}.{collection} at {settings.shown_uri()}"
        for message in result.messages:
            render.warn_line(message)
        if dry_run:
            action = "insert" if no_upsert else f"upsert (key {', '.join(result.keys)})"
            render.info_line(
                f"dry run: would {action} {result.documents} document(s) from {file} into {where} in "
                f"{result.batches} batch(es) of up to {batch_size}"
                + ("" if no_index else f"; index {mongo_upload.INDEX_NAME} on ({', '.join(result.keys)})")
            )
            raise typer.Exit(0)
        table = Table(title=render.escape(f"Uploaded {file} to {where}"), title_justify="left")
        for name in ("documents", "inserted", "updated", "unchanged", "errors", "batches"):
            table.add_column(name, justify="right")
        table.add_row(
            *(str(getattr(result, n)) for n in ("documents", "inserted", "updated", "unchanged", "errors", "batches"))
        )
        render.out.print(table)
        render.info_line(f"unique key: {', '.join(result.keys)}" + (f"; index {result.index}" if result.index else ""))
        if not result.ok:
            render.error_line(f"nothing was written to {database_name}.{collection}")
    raise typer.Exit(0 if result.ok else EXIT_FAILURE)
