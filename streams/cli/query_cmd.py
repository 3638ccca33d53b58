"""``twin query`` (the named queries in ``queries/``) and ``twin sql`` (any SELECT), both on a
read-only connection to the twin's DuckDB file, parameters bound, never pasted into SQL.

The helpers here (database and run flags) are shared by ``twin report`` and ``twin compare``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from streams.cli.main import CliError
from streams.cli.options import add_setting_flags, settings_from_args
from streams.settings import env_var

__all__ = [
    "add_database_flags",
    "add_format_flag",
    "add_run_flag",
    "parse_params",
    "register",
    "requested_run",
]

_SQL_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def add_database_flags(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """``--duckdb-path`` and ``--data-dir`` (settings, with their TWIN_ variables)."""
    group = parser.add_argument_group("twin")
    add_setting_flags(group, "duckdb_path", "data_dir")
    return group


def add_run_flag(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, text: str | None = None
) -> None:
    """``--run`` (alias ``--run-id``): the settings field run_id, default the newest run."""
    parser.add_argument(
        "--run",
        "--run-id",
        dest="setting__run_id",
        default=None,
        metavar="RUN",
        help=(text or "the run to query (default: the newest run in the file)")
        + f" [env: {env_var('run_id')}]",
    )


def add_format_flag(parser: argparse.ArgumentParser) -> None:
    from streams.output import FORMATS

    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )


def requested_run(args: argparse.Namespace) -> str | None:
    """The run named by ``--run`` or TWIN_RUN_ID (validated by the settings), else None."""
    if args.setting__run_id is None and not os.environ.get(env_var("run_id")):
        return None
    return settings_from_args(args).run_id


def parse_params(items: list[str] | None) -> dict[str, str]:
    """``["top=5", "run_id=x"]`` -> ``{"top": "5", "run_id": "x"}``."""
    out: dict[str, str] = {}
    for item in items or ():
        name, eq, value = item.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name.strip()):
            raise CliError(f"--param {item!r}: expected NAME=VALUE")
        out[name.strip()] = value
    return out


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "query",
        help="run a named analyst query (queries/*.sql) against DuckDB; --list shows them",
        description=(
            "Run one of the named SQL queries in queries/ on a read-only connection to the "
            "twin's DuckDB file. Parameters are bound (--param NAME=VALUE, cast to the type the "
            "query declares); run_id defaults to --run / TWIN_RUN_ID, else the newest run."
        ),
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="query name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the named queries")
    parser.add_argument(
        "--param", action="append", metavar="NAME=VALUE", help="bind a query parameter (repeatable)"
    )
    add_format_flag(parser)
    parser.add_argument(
        "--max-rows",
        type=int,
        default=500,
        metavar="N",
        help="rows shown in table format (default 500; csv/json print all)",
    )
    group = add_database_flags(parser)
    add_run_flag(group)
    parser.set_defaults(func=_query)

    parser = subparsers.add_parser(
        "sql",
        help="run any read-only SQL against the twin's DuckDB file",
        description=(
            "Run SQL on a read-only connection to the twin's DuckDB file (tables: "
            "docs/TABLES.md). Bind values with --param NAME=VALUE and $NAME in the SQL; "
            "$run_id, if used and not given, is --run / TWIN_RUN_ID, else the newest run."
        ),
    )
    parser.add_argument(
        "sql", metavar="SQL", help='e.g. "SELECT scope, count(*) FROM kpi GROUP BY scope"'
    )
    parser.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="bind $NAME (repeatable; numbers are cast)",
    )
    add_format_flag(parser)
    parser.add_argument(
        "--max-rows",
        type=int,
        default=500,
        metavar="N",
        help="rows shown in table format (default 500; csv/json print all)",
    )
    group = add_database_flags(parser)
    add_run_flag(group, text="the run $run_id stands for (default: the newest run in the file)")
    parser.set_defaults(func=_sql)


def _list(fmt: str) -> int:
    from streams.output import render
    from streams.queries import list_queries

    rows = [(q.name, q.signature(), q.description) for q in list_queries()]
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table

        table = Table(title="Named queries (twin query NAME --param NAME=VALUE)", show_lines=True)
        for col in ("name", "parameters", "what it answers"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(*r)
        Console(width=None if sys.stdout.isatty() else 140).print(table)
        return 0
    sys.stdout.write(render(fmt, ["name", "parameters", "description"], rows))
    return 0


def _note(text: str) -> None:
    print(text, file=sys.stderr)


def _query(args: argparse.Namespace) -> int:
    from streams.analysis import AnalysisError, read_only, resolve_run
    from streams.output import render
    from streams.queries import QueryError, bind_params, load_query, run_query

    if args.list:
        if args.name:
            raise CliError("give either a query NAME or --list, not both")
        return _list(args.format)
    if not args.name:
        raise CliError("give a query NAME (twin query --list shows them)")
    given: dict[str, Any] = parse_params(args.param)
    settings = settings_from_args(args)
    try:
        query = load_query(args.name)
        bind_params(query, {"run_id": "-", **given} if "run_id" in query.params else given)
        with read_only(settings.duckdb_path) as con:
            title = query.name
            if "run_id" in query.params:
                wanted = given.get("run_id") or requested_run(args)
                run = resolve_run(con, wanted)
                if wanted is None:
                    _note(f"twin query: run {run} (the newest in the file; choose with --run)")
                given["run_id"] = run
                title = f"{query.name}, run {run}"
            columns, rows = run_query(con, query, given)
    except (QueryError, AnalysisError) as exc:
        raise CliError(str(exc)) from None
    sys.stdout.write(render(args.format, columns, rows, title=title, max_rows=args.max_rows))
    return 0


def _sql(args: argparse.Namespace) -> int:
    import duckdb

    from streams.analysis import AnalysisError, read_only, resolve_run
    from streams.output import render
    from streams.queries import cast_value

    text = args.sql.strip()
    if not text:
        raise CliError("empty SQL")
    given: dict[str, Any] = {
        k: v if k == "run_id" else cast_value(v) for k, v in parse_params(args.param).items()
    }
    settings = settings_from_args(args)
    try:
        with read_only(settings.duckdb_path) as con:
            if "run_id" in _SQL_PARAM.findall(text) and "run_id" not in given:
                wanted = requested_run(args)
                given["run_id"] = resolve_run(con, wanted)
                if wanted is None:
                    _note(f"twin sql: $run_id = {given['run_id']} (the newest run in the file)")
            try:
                cur = con.execute(text, given or None)
                columns = [d[0] for d in cur.description or ()]
                rows = cur.fetchall() if cur.description else []
            except duckdb.Error as exc:
                raise CliError(_one_line(exc)) from None
    except AnalysisError as exc:
        raise CliError(str(exc)) from None
    if not columns:
        _note("twin sql: the statement returned no result set")
        return 0
    sys.stdout.write(render(args.format, columns, rows, max_rows=args.max_rows))
    return 0


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    where = next((ln for ln in lines[1:] if ln.startswith("LINE ")), "")
    return " ".join(filter(None, [lines[0] if lines else type(exc).__name__, where]))
