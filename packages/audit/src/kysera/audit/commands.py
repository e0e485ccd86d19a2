"""``kysera audit``: read one row's audit history, purge old entries.

```
kysera audit history TABLE ID [--limit N] [--json] [--audit-table NAME]
kysera audit purge --older-than 90d [--audit-table NAME]
```

``ID`` is the row's key as the log stores it: the value (``42``), or a JSON list for a
composite key (``'[7, "x"]'``). The values are printed as stored (the audit encoding).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
from typing import Any

from sqlalchemy import MetaData, select

from kysera.audit.retention import purge_audit_logs
from kysera.audit.table import audit_log_table
from kysera.core import BadRequestError, Command, command_engine, command_url

__all__ = ["audit_command"]

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def _duration(text: str) -> dt.timedelta:
    """``90d``, ``12h``, ``1h30m``, ``45s``: a positive duration."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"not a duration like 90d, 12h or 1h30m: {text!r}")
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return int(text)


def _arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="audit_action", required=True, metavar="ACTION")
    history = actions.add_parser("history", help="one row's log entries, newest first")
    history.add_argument("table", help="the audited table")
    history.add_argument("id", help="the row's key (a JSON list for a composite key)")
    history.add_argument("--limit", type=_positive, default=None, metavar="N")
    history.add_argument("--json", action="store_true", help="print JSON lines")
    purge = actions.add_parser("purge", help="delete the entries older than a duration")
    purge.add_argument("--older-than", type=_duration, required=True, metavar="DURATION")
    for action in (history, purge):
        action.add_argument("--audit-table", default="audit_logs", metavar="NAME")
        action.add_argument("--url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _entry_key(given: str) -> str:
    """The stored form of a key given on the command line."""
    text = given.strip()
    if text.startswith("["):
        try:
            return json.dumps(json.loads(text), separators=(",", ":"))
        except ValueError as exc:
            raise BadRequestError(f"not a JSON list of key values: {given!r}") from exc
    return text


async def _history(args: argparse.Namespace) -> int:
    engine = command_engine(command_url(args))
    log = audit_log_table(MetaData(), args.audit_table)
    statement = (
        select(log)
        .where(log.c.table_name == args.table, log.c.entity_id == _entry_key(args.id))
        .order_by(log.c.changed_at.desc(), log.c.id.desc())
        .limit(args.limit)
    )
    try:
        async with engine.connect() as connection:
            rows = [row._asdict() for row in await connection.execute(statement)]
    finally:
        await engine.dispose()
    if not rows:
        print(f"no audit entries for {args.table} {args.id}")
        return 0
    for row in rows:
        if args.json:
            print(json.dumps(row, default=_json_default, sort_keys=True))
            continue
        by = f" by {row['changed_by']}" if row["changed_by"] else ""
        fields = ", ".join(row["changed_fields"] or ())
        print(
            f"#{row['id']} {row['changed_at']:%Y-%m-%d %H:%M:%S} {row['operation']}{by}: {fields}"
        )
    return 0


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.date, dt.time)) else str(value)


async def _purge(args: argparse.Namespace) -> int:
    engine = command_engine(command_url(args))
    try:
        deleted = await purge_audit_logs(engine, args.older_than, table=args.audit_table)
    finally:
        await engine.dispose()
    print(
        f"deleted {deleted} audit entr{'y' if deleted == 1 else 'ies'} older than {args.older_than}"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    action = _history if args.audit_action == "history" else _purge
    return asyncio.run(action(args))


audit_command = Command(
    name="audit",
    help="read a row's audit history, purge old audit entries",
    add_arguments=_arguments,
    run=_run,
)
