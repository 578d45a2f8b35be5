"""What every command shares: options, the error boundary, messages on stderr, progress."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from crmtool.errors import CrmToolError, ExitCode, UsageError
from crmtool.progress import Progress

if TYPE_CHECKING:
    from crmtool.result import CommandResult
    from crmtool.status import Status
    from crmtool.workspace import Workspace

log = logging.getLogger("crmtool")
log.addHandler(logging.NullHandler())
log.propagate = False


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    junit = "junit"


class FileFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"
    xlsx = "xlsx"


WorkspaceOpt = Annotated[str, typer.Option("--workspace", "-w", envvar="CRMTOOL_WORKSPACE",
                                           help="DuckDB workspace file, or :memory: for a one-shot run.")]
LockTimeoutOpt = Annotated[float, typer.Option("--lock-timeout", help="Seconds to wait for another run's lock.")]
KeyFileOpt = Annotated[Path | None, typer.Option(
    "--key-file",
    help="Key for keyed hashes (else CRMTOOL_KEY, CRMTOOL_KEY_FILE, or a key file beside the workspace).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")]
LogFileOpt = Annotated[Path | None, typer.Option("--log-file", help="Also append messages to this file.")]
# how every CSV a command writes looks: a command takes ``output: OutputOptions`` and cli_command
# gives it these options (and builds the object)
_OUTPUT_PARAMS: dict[str, tuple[Any, Any]] = {
    "csv_dialect": (Annotated[str | None, typer.Option(
        "--csv-dialect", help="excel-es: ';' delimiter, decimal comma and UTF-8 with BOM, as a Spanish Excel "
        "opens them (excel-es-ansi: cp1252 instead); applies to every CSV the command writes.")], None),
    "delimiter": (Annotated[str | None, typer.Option(
        "--delimiter", help="Delimiter of CSV outputs: one character, or tab, comma, semicolon, pipe.")], None),
    "decimal_comma": (Annotated[bool, typer.Option(
        "--decimal-comma", help="Write decimals in CSV outputs as 12,5 (needs a delimiter other than ',').")], False),
    "bom": (Annotated[bool, typer.Option("--bom", help="Start CSV outputs with a UTF-8 byte-order mark.")], False),
    "encoding": (Annotated[str | None, typer.Option(
        "--encoding", help="Encoding of CSV outputs (utf-8 unless a dialect says otherwise), e.g. cp1252.")], None),
    "keep_formulas": (Annotated[bool, typer.Option(
        "--keep-formulas", help="Do not neutralise spreadsheet formulas in CSV outputs.")], False),
}
# what the user says about an input when detection is wrong: ``read: ReadOptions``
_READ_PARAMS: dict[str, tuple[Any, Any]] = {
    "input_delimiter": (Annotated[str | None, typer.Option(
        "--input-delimiter", help="Delimiter of the CSV input when detection gets it wrong "
        "(one character, or tab, comma, semicolon, pipe).")], None),
    "input_encoding": (Annotated[str | None, typer.Option(
        "--input-encoding", help="Encoding of the CSV input when detection gets it wrong, e.g. cp1252.")], None),
    "sheet": (Annotated[str | None, typer.Option(
        "--sheet", help="Sheet of an xlsx input: its name or number (default the first).")], None),
}

class FlagHelpGroup(TyperGroup):
    """A command group whose flags typer makes itself (``-h/--help``, ``--install-completion``) read as
    flags in --help (typer shows ``<bool>`` after them), on the group and on each command it hands
    out. Every ``typer.Typer`` of the CLI is made with ``cls=FlagHelpGroup``."""

    def get_params(self, ctx: Any) -> Any:
        return _flags(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            _flags(cmd.get_params(ctx))
        return cmd


def _flags(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Result on stdout: text, json or junit.")]
TextJsonFormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Result on stdout: text or json.")]


@dataclass(frozen=True)
class Bundle:
    """Options a command takes as one object: ``name -> (annotation, default)`` in --help order, and
    ``build(**values)`` that makes the object from what the user gave."""

    params: dict[str, tuple[Any, Any]]
    build: Callable[..., Any]


@dataclass(frozen=True)
class WorkspaceOptions:
    """Where a command keeps its history: ``--workspace``, ``--lock-timeout`` and ``--key-file`` as one
    object. A command declares ``where: WorkspaceOptions = WorkspaceOptions()`` (or one of the
    ``Annotated`` variants below) and :func:`cli_command` gives it the options."""

    path: str = "crmtool.duckdb"  # "" when not named and the command has its own default (run)
    lock_timeout: float = 60.0
    key_file: Path | None = None

    @contextmanager
    def open(self, **kwargs: Any) -> Iterator[Workspace]:
        """``with where.open() as ws:`` -- locked, with the key the user named; the runs it records
        are named in the command's end line (also when the command fails)."""
        from crmtool.workspace import open_workspace

        with open_workspace(self.path, lock_timeout=self.lock_timeout, key_file=self.key_file, **kwargs) as ws:
            try:
                yield ws
            finally:
                noted = _RUNS.get()
                if noted is not None:
                    noted.extend(ws.started_runs)


# the run ids the running command's workspaces recorded (set by cli_command for its Ui)
_RUNS: ContextVar[list[str] | None] = ContextVar("crmtool_cli_runs", default=None)


_WORKSPACE_PARAMS: dict[str, tuple[Any, Any]] = {
    "workspace": (WorkspaceOpt, "crmtool.duckdb"),
    "lock_timeout": (LockTimeoutOpt, 60.0),
    "key_file": (KeyFileOpt, None),
}


def workspace_bundle(*names: str, **custom: tuple[Any, Any]) -> Bundle:
    """The workspace options ``names`` and ``custom`` (all three standard ones when neither is given);
    ``custom`` gives an option its own ``(annotation, default)`` (``validate``'s in-memory default,
    ``run``'s pipeline workspace). Always in the order workspace, lock timeout, key file."""
    chosen = set(names) | set(custom) or set(_WORKSPACE_PARAMS)
    params = {n: custom.get(n, spec) for n, spec in _WORKSPACE_PARAMS.items() if n in chosen}

    def build(workspace: str | None = "crmtool.duckdb", lock_timeout: float = 60.0,
              key_file: Path | None = None) -> WorkspaceOptions:
        return WorkspaceOptions(workspace or "", lock_timeout, key_file)

    return Bundle(params, build)


# the variants a command may declare instead of the full WorkspaceOptions
WorkspaceLockOptions = Annotated[WorkspaceOptions, workspace_bundle("workspace", "lock_timeout")]
WorkspaceKeyOptions = Annotated[WorkspaceOptions, workspace_bundle("workspace", "key_file")]


def _columns() -> int:
    """Width of tables when stdout is not a terminal: $COLUMNS when set (e.g. 80), else 160."""
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return 160


class Ui:
    """Messages for people on stderr; plain when not a TTY (cron, CI), quiet on request."""

    def __init__(self, quiet: bool = False, log_file: Path | None = None) -> None:
        from crmtool.cli.plain_console import LazyConsole as Console  # rich, imported when it has work

        self.quiet = quiet
        # what the end-of-run line says besides the status: set by the command once it knows
        self.run_id: str | None = None
        self.runs: list[str] = []  # runs the command's workspaces recorded: the last one is named if run_id is not
        self.counts: dict[str, Any] = {}
        self.status: str | None = None  # the run's status word when it is not the exit code's (warn)
        self.interactive = sys.stderr.isatty() and not os.environ.get("CI")
        self.err = Console(stderr=True, no_color=not self.interactive, highlight=False,
                           force_terminal=self.interactive or None, soft_wrap=True)
        # --quiet: the text rendering of the result stays silent too (cron mails any output);
        # data asked for with --format json|junit|csv still goes to stdout through emit()
        self.out = Console(highlight=False, no_color=not sys.stdout.isatty(), soft_wrap=True,
                           width=None if sys.stdout.isatty() else _columns(), quiet=quiet)
        for old in [h for h in log.handlers if isinstance(h, logging.FileHandler)]:
            log.removeHandler(old)  # an earlier command's --log-file (same process) gets nothing more
            old.close()
        if log_file is not None:
            try:
                log_file.parent.mkdir(parents=True, exist_ok=True)
                handler = logging.FileHandler(log_file, encoding="utf-8")
            except OSError as exc:  # before any work: a usage error, not a traceback
                self.err.print(f"error: --log-file {log_file} cannot be written ({exc.strerror})", markup=False)
                raise typer.Exit(int(ExitCode.USAGE)) from None
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            log.addHandler(handler)
            log.setLevel(logging.INFO)

    def info(self, message: str) -> None:
        log.info(message)
        if not self.quiet:
            self.err.print(message, markup=False)

    def warn(self, message: str) -> None:
        log.warning(message)
        if not self.quiet:
            self.err.print(f"warning: {message}", markup=False)

    def error(self, error: CrmToolError) -> None:
        log.error(error.message)
        self.err.print(f"error: {error.message}", markup=False)
        if error.hint:
            self.err.print(f"hint: {error.hint}", markup=False)

    def end(self, code: int, detail: str = "", status: str | None = None) -> None:
        """The last line of every run in the log file, also on failure: command, run id, status,
        exit code and key counts. On a non-zero exit it goes to stderr too, even with --quiet."""
        run_id = self.run_id or (self.runs[-1] if self.runs else None)
        line = end_line(_command_name(), run_id, code, self.counts, detail, status)
        log.log(logging.INFO if code == 0 else logging.ERROR, line)
        if code != 0 and self.quiet:
            self.err.print(line, markup=False)

    @contextmanager
    def progress(self, title: str) -> Iterator[Progress]:
        """A progress bar on a TTY (the step, and n of N where the step counts); when not a TTY the
        steps only go to the log."""
        if not self.interactive or self.quiet:
            def log_step(step: str, done: int | None = None, total: int | None = None) -> None:
                log.info("%s: %s%s", title, step, f" ({done}/{total})" if total else "")

            yield log_step
            return
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        from crmtool.cli.plain_console import LazyConsole

        console = self.err.console if isinstance(self.err, LazyConsole) else self.err  # rich's, or one given
        with Bar(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                 TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task(title, total=None)

            def show(step: str, done: int | None = None, total: int | None = None) -> None:
                bar.update(task, description=f"{title}: {step}", completed=done or 0, total=total)

            yield show


def cli_command(fn: Callable[..., int | ExitCode | None]) -> Callable[..., None]:
    """The one command wrapper: ``fn(ui, **options)`` becomes a typer command with ``--quiet`` and
    ``--log-file`` added, its :class:`Ui` built from them and its body run inside :func:`run_command`.

    Every command is written as::

        @app.command("name")
        @cli_command
        def name(ui: Ui, input: InputArg, fmt: FormatOpt = OutputFormat.text) -> ExitCode:
            \"\"\"What the command does (its --help).\"\"\"
            ...
            return ExitCode.OK
    """
    sig = inspect.signature(fn, eval_str=True)  # the modules use string annotations (PEP 563)
    groups: dict[str, Bundle] = {}
    params: list[inspect.Parameter] = []
    for name, p in sig.parameters.items():
        if name == "ui":
            continue
        group = _bundle_of(p.annotation)
        if group is None:
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))  # typer passes keywords
            continue
        groups[name] = group
        params += [inspect.Parameter(opt, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
                   for opt, (annotation, default) in group.params.items()]
    params += [
        inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=QuietOpt),
        inspect.Parameter("log_file", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=LogFileOpt),
    ]
    for param in params:
        _document_flag(param.annotation)

    @functools.wraps(fn)
    def command(*args: Any, quiet: bool = False, log_file: Path | None = None, **kwargs: Any) -> None:
        ui = Ui(quiet, log_file)
        token = _RUNS.set(ui.runs)

        def body() -> int | ExitCode | None:
            for name, group in groups.items():
                kwargs[name] = group.build(**{opt: kwargs.pop(opt) for opt in group.params})
            return fn(ui, *args, **kwargs)

        try:
            run_command(ui, body)
        finally:
            _RUNS.reset(token)

    annotations = {p.name: p.annotation for p in params}
    command.__annotations__ = {**annotations, "return": None}
    command.__signature__ = sig.replace(parameters=params, return_annotation=None)  # type: ignore[attr-defined]
    return command


def _bundle_of(annotation: Any) -> Bundle | None:
    """The bundle a parameter stands for: ``Annotated[X, Bundle(...)]``, or OutputOptions, ReadOptions,
    WorkspaceOptions with their standard options; None for an ordinary parameter."""
    from typing import get_args, get_origin

    if get_origin(annotation) is Annotated:
        return next((a for a in get_args(annotation)[1:] if isinstance(a, Bundle)), None)
    return _standard_bundles().get(annotation)


@functools.cache
def _standard_bundles() -> dict[Any, Bundle]:
    from crmtool.io.readers import ReadOptions
    from crmtool.io.writers import OutputOptions

    return {OutputOptions: Bundle(_OUTPUT_PARAMS, _output_options), ReadOptions: Bundle(_READ_PARAMS, _read_options),
            WorkspaceOptions: workspace_bundle()}


def _output_options(csv_dialect: str | None, delimiter: str | None, decimal_comma: bool, bom: bool,
                    encoding: str | None, keep_formulas: bool) -> Any:
    from crmtool.io.writers import OutputOptions

    return OutputOptions.build(csv_dialect, delimiter=delimiter, decimal_comma=decimal_comma or None,
                               bom=bom or None, encoding=encoding, neutralise_formulas=not keep_formulas)


def _read_options(input_delimiter: str | None, input_encoding: str | None, sheet: str | None) -> Any:
    from crmtool.io.readers import ReadOptions

    return ReadOptions(input_delimiter, input_encoding, sheet)


def _document_flag(annotation: Any) -> None:
    """A boolean option is a flag: its help shows ``--quiet`` alone, not ``--quiet <bool>``."""
    from typing import get_args, get_origin

    from typer.models import OptionInfo

    if get_origin(annotation) is not Annotated:
        return
    base, *extras = get_args(annotation)
    for info in extras:
        if base is bool and isinstance(info, OptionInfo) and info.metavar is None:
            info.metavar = ""


def _interrupted_query(exc: BaseException) -> bool:
    """DuckDB turns a SIGINT during a query into InterruptException or RuntimeError('Query interrupted')."""
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None and isinstance(exc, duckdb.InterruptException):
        return True
    return isinstance(exc, RuntimeError) and str(exc).strip() == "Query interrupted"


#: what a full disk or an exhausted memory cap says through DuckDB or the OS
_NO_ROOM = ("No space left on device", "Disk quota exceeded", "Read-only file system")


def _out_of_room(exc: BaseException) -> CrmToolError | None:
    """A full disk (DuckDB's spill files, the workspace, an output) or DuckDB's memory cap reached
    under any statement: one clear line and exit 2, not a traceback. The previous outputs are
    unchanged (they are replaced only when a run completes)."""
    duckdb = sys.modules.get("duckdb")
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if duckdb is not None and isinstance(exc, duckdb.OutOfMemoryException):
        return UsageError(f"DuckDB ran out of memory ({first})",
                          "raise the cap with CRMTOOL_MEMORY_LIMIT (e.g. 4GB) or free memory; "
                          "the previous outputs are unchanged")
    disk = (isinstance(exc, OSError) and exc.strerror in _NO_ROOM) or (
        duckdb is not None and isinstance(exc, duckdb.Error) and any(t in str(exc) for t in _NO_ROOM))
    if disk:
        return UsageError(f"cannot write: {first}",
                          "free disk space where the outputs, the workspace and the temporary folder "
                          "(TMPDIR) live; the previous outputs are unchanged")
    return None


def run_command(ui: Ui, body: Callable[[], int | ExitCode | None]) -> None:
    """The error boundary: known errors become a message and their exit code, never a traceback."""
    try:
        try:
            code = body()
        except Exception as exc:
            known = _out_of_room(exc)
            if known is None:
                raise
            raise known from None
    except CrmToolError as exc:
        ui.error(exc)
        ui.end(int(exc.exit_code))
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:  # temp files went with the stack (atomic writes, the workspace sandbox)
        ui.err.print("interrupted", markup=False)
        ui.end(int(ExitCode.INTERRUPTED), "interrupted")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except Exception as exc:
        if _interrupted_query(exc):  # Ctrl-C while DuckDB ran a query: the same as above
            ui.err.print("interrupted", markup=False)
            ui.end(int(ExitCode.INTERRUPTED), "interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        # a bug: the log still says the run ended (the traceback follows)
        ui.end(1, f"crashed with {type(exc).__name__}", status="error")
        raise
    ui.end(int(code or 0), status=ui.status)
    raise typer.Exit(int(code or 0))


_STATUS_BY_CODE = {0: "pass", 1: "fail", 2: "error", 3: "busy", 130: "aborted"}


def end_line(command: str, run_id: str | None, code: int, counts: dict[str, Any], detail: str = "",
             status: str | None = None) -> str:
    """``crmtool clean: run 2026…-ab12cd fail exit=1 rows_in=303 rejected=6``: one line a log
    scanner (or a person reading cron mail) can match."""
    parts = [f"{command}: run {run_id or '-'} {status or _STATUS_BY_CODE.get(code, 'error')} exit={code}"]
    parts += [f"{k}={v}" for k, v in counts.items()]
    if detail:
        parts.append(f"({detail})")
    return " ".join(parts)


def _command_name() -> str:
    """``crmtool clean``: the command being run (typer vendors click from 0.29 on)."""
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # older typer on click
        try:
            from click import get_current_context  # type: ignore[no-redef,unused-ignore]
        except ImportError:
            return "crmtool"
    ctx = get_current_context(silent=True)
    return str(ctx.command_path) if ctx is not None else "crmtool"


def result_table(*columns: str, right: Collection[str] = ()) -> Any:
    """A borderless rich table of ``columns`` (imported when drawn); those in ``right`` (counts)
    are right-aligned."""
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left")
    return table


def finish(ui: Ui, result: CommandResult, fmt: str = "text", text: Callable[[], None] | None = None, *,
           renderers: dict[str, Callable[[], str]] | None = None, counts: dict[str, Any] | None = None,
           status: Status | None = None) -> ExitCode:
    """The one ending of every command: ``result`` rendered as ``fmt`` and its status as the exit code.

    ``json`` is the result's frame (:func:`crmtool.result.payload`) through the one encoder
    (``crmtool.report.to_json``); another format (csv, junit, yaml) comes from ``renderers``; text
    is ``text()``, which prints to ``ui.out`` (silent with ``--quiet``). The end-of-run line gets the
    status, the result's ``run_id`` when it has one, and ``counts``. ``status`` overrides the
    result's where an option decides the verdict (``validate --fail-on warning``)."""
    from crmtool.report import to_json
    from crmtool.result import payload

    verdict = status or result.status
    ui.status = str(verdict)
    run_id = getattr(result, "run_id", None)
    if isinstance(run_id, str) and run_id:
        ui.run_id = run_id
    if counts is not None:
        ui.counts = counts
    name = str(fmt)
    if name == "json":
        emit(ui, to_json(payload(_command_name().removeprefix("crmtool").strip(), result, verdict)))
    elif renderers and name in renderers:
        emit(ui, renderers[name]())
    elif name != "text":  # a command checks its formats before it works; this is the last wall
        raise UsageError(f"--format {name} is not available for this command", "use text or json")
    elif text is not None:
        text()
    return ExitCode(verdict.exit_code)


def emit(ui: Ui, text: str) -> None:
    """Data on stdout, exactly as given."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def parse_as_of(value: str | None) -> date | None:
    """``--as-of YYYY-MM-DD`` as a date (None when not given); a clear usage error otherwise."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--as-of {value!r} is not a date", "write it as YYYY-MM-DD") from None
