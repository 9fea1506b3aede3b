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
    from newsletter.inputs.members_edit import SOURCES, describe_resubscription
    from newsletter.inputs.members_listing import listing

    settings = _settings(ctx)
    marks = _Marks.read(settings)
    try:
        # Checked whole first (nothing is shown of a list with a problem), then shown member by
        # member: a list of a million takes no more memory than one of five.
        with listing(_members_file(settings), marks.visit) as found:
            marks.settle(settings)
            click.echo(f"{LIST_FILE}: {found.count} members, {marks.mailed} of them get the reminders")
            lines: list[str] = []
            for member in found.members():
                line = f"  {member.email:<{marks.width}}  {member.name}".rstrip()
                if member.key in marks.suppressed:
                    since, _source = marks.suppressed[member.key]
                    line += f"  [unsubscribed since {_when(since)}: not mailed]"
                elif member.key in marks.bouncing:
                    line += "  [bouncing: not mailed until checked — `subscribers add ADDRESS --resubscribe`]"
                elif member.key in marks.resubscribed:
                    line += f"  [{describe_resubscription(*marks.resubscribed[member.key])}]"
                lines.append(line)
                if len(lines) == 1000:  # one write for many lines: click.echo flushes each time
                    click.echo("\n".join(lines))
                    lines.clear()
            if lines:
                click.echo("\n".join(lines))
    except DataError as err:
        raise _fixable(err, "cannot list it") from err
    suppressed = marks.suppressed
    if suppressed:
        click.echo(
            f"Unsubscribed ({len(suppressed)}): never mailed, whatever {LIST_FILE} says, "
            "until `newsletter subscribers add ADDRESS --resubscribe`"
        )
        for address, (since, source) in sorted(suppressed.items(), key=lambda item: item[1][0]):
            note = "" if address not in marks.listed else f"  (still in {LIST_FILE})"
            click.echo(f"  {address}  since {_when(since)}, {SOURCES.get(source, source)}{note}")


class _Marks:
    """What the state database says of the members (unsubscribed, bouncing, back on the list), and
    what the list's first pass counts with it: who is mailed, the widest address, who is listed."""

    def __init__(
        self, suppressed: dict[str, tuple[str, str]], resubscribed: dict[str, Any], bouncing: Any
    ) -> None:
        self.suppressed, self.resubscribed, self.bouncing = suppressed, resubscribed, bouncing
        self.mailed = self.width = 0
        self.listed: set[str] = set()  # the unsubscribed addresses that are still in the file
        self.read_before = True

    @classmethod
    def read(cls, settings: Any) -> _Marks:
        """From the state database if there is one; otherwise it is made once the list is found
        readable (``settle``), as it was when the list was read before the database was opened."""
        if not Path(settings.state_path).exists():
            marks = cls({}, {}, frozenset())
            marks.read_before = False
            return marks
        with _ledger(settings) as ledger:
            return cls(ledger.suppressed(), ledger.resubscriptions(), ledger.bouncing())

    def settle(self, settings: Any) -> None:
        if not self.read_before:
            with _ledger(settings):  # a new state database holds no marks
                pass

    def visit(self, member: Any) -> None:
        key = member.key
        self.width = max(self.width, len(member.email))
        if key in self.suppressed:
            self.listed.add(key)
        elif key not in self.bouncing:
            self.mailed += 1


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
    from newsletter.inputs.members_io import export_rows
    from newsletter.inputs.members_listing import listing

    settings = _settings(ctx)
    path = _members_file(settings)
    if file is not None and file.resolve() == path.resolve():
        raise click.BadParameter(f"that would overwrite {LIST_FILE} — choose another file", param_hint="FILE")
    marks = _Marks.read(settings)
    try:
        # Checked whole first (nothing is written of a list with a problem), then written row by row.
        with listing(path) as found:
            marks.settle(settings)
            if file is None:
                left_out = export_rows(
                    found.columns, found.members(), marks.suppressed, sys.stdout, bom=False
                )
            else:
                left_out = _export_to(file, found.columns, found.members(), marks.suppressed)
    except DataError as err:
        raise _fixable(err, "nothing was exported") from err
    if file is not None:
        click.echo(f"Exported {found.count - left_out} members to {file}.", err=True)
    if left_out:
        click.echo(f"{left_out} unsubscribed addresses left out.", err=True)


def _export_to(file: Path, columns: list[str], members: Iterator[Any], suppressed: Any) -> int:
    """Write the export to ``file`` atomically (whole or not at all), with the BOM that tells Excel
    it is UTF-8."""
    import io

    from newsletter.inputs.members_io import atomic_writer, export_rows

    with atomic_writer(file) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        left_out = export_rows(columns, members, suppressed, text, bom=True)
        text.flush()
        text.detach()
    return left_out


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
