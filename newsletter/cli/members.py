"""`newsletter subscribers …` and `newsletter serve`: the organisers' list and the public pages.

These commands are for organisers at their own terminal, so unlike logs and web pages they show
addresses.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from newsletter.errors import DataError, NewsletterError

LIST_FILE = "subscribers.csv"


class FileProblems(NewsletterError):
    """subscribers.csv must be fixed before it can be edited."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _settings(ctx: click.Context) -> Any:
    return ctx.find_root().obj.settings()


@contextmanager
def _ledger(settings: Any) -> Iterator[Any]:
    from newsletter.state.ledger import Ledger

    with Ledger(settings.state_path) as ledger:
        yield ledger


def _members_file(settings: Any) -> Path:
    return Path(settings.home) / LIST_FILE


def _fixable(err: DataError, done: str = "nothing was changed") -> FileProblems:
    """The file's problems one per line, then what happened: the CLI prints it and exits 1."""
    lines = [str(p) for p in err.problems]
    count = len(lines)
    lines.append(f"{count} problem{'s' if count != 1 else ''} in {LIST_FILE}: {done} — fix them first")
    return FileProblems("\n".join(lines))


def _log(ledger: Any, action: str, detail: str = "") -> None:
    """A line in the activity log the organisers' console shows, as done on the "command line".

    The log names members by row, never by address (the console shows it in a browser)."""
    from newsletter.state.console import COMMAND_LINE, record

    record(ledger, COMMAND_LINE, action, detail, now=_now())


def _row_of(path: Path, address: str) -> str:
    from newsletter.inputs.members_edit import load

    try:
        roster = load(path)
    except (DataError, OSError):
        return ""
    index = roster.find(address)
    line = roster.members[index].line if index is not None else None
    return f"row {line}" if line else ""


def _when(since: str) -> str:
    moment = dt.datetime.fromisoformat(since)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@click.group()
def subscribers() -> None:
    """Keep the member list: list, add, remove, import, export."""


@subscribers.command(name="list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """Everyone on the list, and who unsubscribed (and since when)."""
    from newsletter.inputs.members_edit import SOURCES, describe_resubscription, load

    settings = _settings(ctx)
    try:
        roster = load(_members_file(settings))
    except DataError as err:
        raise _fixable(err, "cannot list it") from err
    with _ledger(settings) as ledger:
        suppressed = ledger.suppressed()
        resubscribed = ledger.resubscriptions()
        bouncing = ledger.bouncing()
    listed = {m.key for m in roster.members}
    mailed = [m for m in roster.members if m.key not in suppressed and m.key not in bouncing]
    width = max((len(m.email) for m in roster.members), default=0)
    click.echo(f"{LIST_FILE}: {len(roster.members)} members, {len(mailed)} of them get the reminders")
    for member in roster.members:
        line = f"  {member.email:<{width}}  {member.name}".rstrip()
        if member.key in suppressed:
            since, _source = suppressed[member.key]
            line += f"  [unsubscribed since {_when(since)}: not mailed]"
        elif member.key in bouncing:
            line += "  [bouncing: not mailed until checked — `subscribers add ADDRESS --resubscribe`]"
        elif member.key in resubscribed:
            line += f"  [{describe_resubscription(*resubscribed[member.key])}]"
        click.echo(line)
    if suppressed:
        click.echo(
            f"Unsubscribed ({len(suppressed)}): never mailed, whatever {LIST_FILE} says, "
            "until `newsletter subscribers add ADDRESS --resubscribe`"
        )
        for address, (since, source) in sorted(suppressed.items(), key=lambda item: item[1][0]):
            note = "" if address not in listed else f"  (still in {LIST_FILE})"
            click.echo(f"  {address}  since {_when(since)}, {SOURCES.get(source, source)}{note}")


@subscribers.command()
@click.argument("address")
@click.option("--name", help="The member's name, as the greeting will use it.")
@click.option("--resubscribe", is_flag=True, help="Add back an address that unsubscribed (only if asked).")
@click.pass_context
def add(ctx: click.Context, address: str, name: str | None, resubscribe: bool) -> None:
    """Add ADDRESS to the list, or change the name of a member already on it."""
    from newsletter.errors import InvalidValue
    from newsletter.inputs.members_edit import add_member

    settings = _settings(ctx)
    with _ledger(settings) as ledger:
        try:
            done = add_member(
                _members_file(settings), ledger, address, name=name, resubscribe=resubscribe, source="add"
            )
        except InvalidValue as err:  # the address or name typed, not the file
            raise click.BadParameter(err.message, param_hint="ADDRESS or --name") from err
        except DataError as err:
            raise _fixable(err) from err
        if done.outcome != "unchanged" or done.resubscribed:
            action = {"added": "added a member", "updated": "changed a member's name"}.get(
                done.outcome, "re-subscribed a member"
            )
            row = _row_of(_members_file(settings), done.address)
            _log(ledger, action, row + ("; re-subscribed (--resubscribe)" if done.resubscribed else ""))
    said = {
        "added": f"Added {done.address} to {LIST_FILE}.",
        "updated": f"Updated the name of {done.address} in {LIST_FILE}.",
        "unchanged": f"{done.address} is already in {LIST_FILE} as given; nothing changed.",
    }[done.outcome]
    click.echo(said)
    if done.resubscribed:
        click.echo("It was unsubscribed: from now on it gets the reminders again.")


@subscribers.command()
@click.argument("address", metavar="ADDRESS_OR_TOKEN")
@click.pass_context
def remove(ctx: click.Context, address: str) -> None:
    """Take ADDRESS off the list for good (recorded as unsubscribed).

    Also takes the token from an 'unsubscribe TOKEN' mail, as the mailto: link sends it.
    """
    from newsletter.errors import InvalidValue
    from newsletter.inputs.members import validate_address
    from newsletter.inputs.members_edit import find_by_token, unsubscribe

    settings = _settings(ctx)
    path = _members_file(settings)
    with _ledger(settings) as ledger:
        if "@" in address:
            try:
                key = validate_address(address).lower()
            except InvalidValue as err:
                raise click.BadParameter(err.message, param_hint="ADDRESS") from err
        else:
            found = find_by_token(path, ledger, settings.secret, address.strip())
            if found is None:
                raise NewsletterError(
                    "no member has this unsubscribe token — check that it was copied whole, "
                    "or remove the sender's address instead"
                )
            key = found
        row = _row_of(path, key)
        try:
            removed = unsubscribe(path, ledger, key, source="remove", now=_now())
        except DataError as err:
            raise _fixable(
                err, f"{key} is recorded as unsubscribed and gets no more mail, but its row is left in place"
            ) from err
        _log(ledger, "unsubscribed a member", row if removed else "an address not on the list")
    if removed:
        click.echo(f"Removed {key} from {LIST_FILE}; it gets no more mail.")
    else:
        click.echo(f"{key} was not in {LIST_FILE}; recorded as unsubscribed so it is never mailed.")


@subscribers.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_(ctx: click.Context, file: Path) -> None:
    """Add or update members from FILE (CSV as Excel or Google Sheets save it)."""
    from newsletter.inputs.members_edit import import_file

    settings = _settings(ctx)
    path = _members_file(settings)
    if file.resolve() == path.resolve():
        raise click.BadParameter(f"that is {LIST_FILE} itself — import another file", param_hint="FILE")
    with _ledger(settings) as ledger:
        try:
            report = import_file(path, ledger, file)
        except DataError as err:
            if any(p.path == file.name for p in err.problems):
                lines = [*map(str, err.problems), f"{file.name} cannot be imported: nothing was changed"]
                raise FileProblems("\n".join(lines)) from err
            raise _fixable(err) from err
        _log(
            ledger,
            "imported a file",
            f"{file.name}: {len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.unchanged)} already there, {len(report.skipped)} skipped",
        )
    click.echo(
        f"Imported {file.name} into {LIST_FILE}: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.unchanged)} already there, {len(report.skipped)} skipped."
    )
    for label, rows in (("added", report.added), ("updated", report.updated)):
        if rows:
            click.echo(f"  {label}: {_rows(rows)}")
    for problem in report.skipped:
        click.echo(f"  skipped {problem}")
    if report.problems:
        count = len(report.problems)
        which = f"{count} row of {file.name} was" if count == 1 else f"{count} rows of {file.name} were"
        raise FileProblems(
            f"{which} skipped because of the problems above — fix them and import the file again "
            "(rows already imported are not added twice)"
        )


def _rows(lines: list[int]) -> str:
    """'row 2', 'rows 2, 5', 'rows 2–4, 7–5001': runs of lines as ranges, so 5,000 rows fit a line."""
    runs: list[list[int]] = []
    for line in sorted(lines):
        if runs and line == runs[-1][1] + 1:
            runs[-1][1] = line
        else:
            runs.append([line, line])
    text = ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)
    return ("row " if len(lines) == 1 else "rows ") + text


@subscribers.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.pass_context
def export(ctx: click.Context, file: Path | None) -> None:
    """Write the list as CSV for a spreadsheet, to FILE or the terminal.

    Cells that a spreadsheet would run as a formula get a leading '. Unsubscribed addresses are left out.
    """
    import io

    from newsletter.inputs.members_edit import atomic_write, export, load

    settings = _settings(ctx)
    path = _members_file(settings)
    if file is not None and file.resolve() == path.resolve():
        raise click.BadParameter(f"that would overwrite {LIST_FILE} — choose another file", param_hint="FILE")
    try:
        roster = load(path)
    except DataError as err:
        raise _fixable(err, "nothing was exported") from err
    with _ledger(settings) as ledger:
        suppressed = ledger.suppressed()
    out = io.StringIO()
    left_out = export(roster, suppressed, out, bom=file is not None)  # the BOM tells Excel it is UTF-8
    if file is None:
        sys.stdout.write(out.getvalue())
    else:
        atomic_write(file, out.getvalue().encode("utf-8"))
        click.echo(f"Exported {len(roster.members) - left_out} members to {file}.", err=True)
    if left_out:
        click.echo(f"{left_out} unsubscribed addresses left out.", err=True)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8025, show_default=True, type=int, help="Port to listen on.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """The web pages: members' (unsubscribe, sign-up, RSVP, preferences, calendar feed) and the
    organisers' console under /admin."""
    from newsletter.web.public import serve as run_server

    project = ctx.find_root().obj.project(check_subscribers=False)
    public = project.settings.public_url
    if not public:
        click.echo(
            "newsletter: warning: NEWSLETTER_PUBLIC_URL is not set, so mails carry only mailto: "
            "unsubscribe links (no one-click unsubscribe) and sign-up links point at "
            f"http://{host}:{port} — set it to the address where this server is reachable",
            err=True,
        )
    click.echo(f"Serving on http://{host}:{port}" + (f" for {public}" if public else "") + " (Ctrl+C stops)")
    click.echo(f"The organisers' console: {public or f'http://{host}:{port}'}/admin")
    run_server(project, host=host, port=port)
