"""Alembic: one head, and models and migrations agree on PostgreSQL and SQLite."""

from __future__ import annotations

import ast
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import downgrade, upgrade

from quote_service.extensions import db, migrate
from quote_service.models import Base


def script_directory(app: Flask) -> ScriptDirectory:
    config = migrate.get_config(directory=app.extensions["migrate"].directory)
    return ScriptDirectory.from_config(config)


def schema_differences(app: Flask) -> list:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_there_is_exactly_one_head(app: Flask):
    with app.app_context():
        assert len(script_directory(app).get_heads()) == 1


def test_postgres_schema_from_migrations_matches_the_models(app: Flask):
    # The session's database was built by `upgrade()`, as production is.
    assert schema_differences(app) == []


def test_sqlite_schema_from_migrations_matches_the_models(sqlite_app: Flask):
    assert schema_differences(sqlite_app) == []


def test_migrations_downgrade_to_base_and_up_again(sqlite_app: Flask):
    with sqlite_app.app_context():
        downgrade(revision="base")
        assert db.inspect(db.engine).get_table_names() == ["alembic_version"]
        upgrade()
    assert schema_differences(sqlite_app) == []


def test_migration_files_do_not_import_the_application():
    versions = Path(__file__).parent.parent / "migrations" / "versions"
    for path in versions.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        }
        assert not {name for name in imported if name.split(".")[0] == "quote_service"}, path.name
