"""The ``hashpar`` command: a thin typer layer over the library, and the one exit-code table.

======  ==============================================================================
 code    meaning
======  ==============================================================================
 0       success: everything hashed / nothing differs
 1       the run finished, but something differs or some entries could not be read
 2       unusable input or the run could not complete: bad arguments, a bad manifest,
         PATH missing, a worker crashed, the output could not be written
 130     interrupted by Ctrl-C (SIGINT)
 141     standard output was closed by its reader (``| head``): stopped quietly
 143     terminated by SIGTERM
======  ==============================================================================

Failures print exactly one line on stderr, ``hashpar: error: ...``; ``--debug`` adds the
traceback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType

from hashpar.errors import HashparError, Terminated

__all__ = ["EXIT_DIFFERENT", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNUSABLE", "main", "version_line"]

EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_UNUSABLE = 2
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141
EXIT_TERMINATED = 143


def _stop(signum: int, frame: FrameType | None) -> None:
    """The first SIGINT or SIGTERM stops the run; further ones are ignored while it stops.

    A second Ctrl-C must not cut the cleanup short (workers left running, a traceback from
    the interpreter's exit handlers), nor arrive after Python has reset its handlers at exit
    (the process would die of SIGINT instead of exiting 130). Stopping is bounded: the
    engine terminates workers and waits at most a few seconds for them.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated


def main(argv: list[str] | None = None) -> None:
    """Run the command line and exit with the code from the table above.

    The process ends with ``os._exit`` once stdout and stderr are flushed, skipping the
    interpreter's shutdown, which would free every object of the run one at a time and tear
    down every module: measured (medians of 9, alternating) 14 ms for a make of an empty
    directory, 15-35 ms for a make of the small and real trees, 33 ms for a verify of the
    small one. Nothing is left for that shutdown to do: the output is written and closed
    (a manifest file atomically), and the pool's shutdown has waited for every worker.
    """
    code = run(sys.argv[1:] if argv is None else argv)
    try:
        if sys.stdout is not None:  # None when started with stdout closed
            sys.stdout.flush()
    except BrokenPipeError:  # the reader went away after the last write: as `| head` does
        code = EXIT_PIPE_CLOSED
    except OSError as exc:
        _error(f"cannot write standard output: {exc.strerror or exc}", debug=False)
        code = EXIT_UNUSABLE
    if sys.stderr is not None:
        with contextlib.suppress(OSError):
            sys.stderr.flush()
    _stop_children()
    os._exit(code)


def _stop_children() -> None:
    """Kill and reap any worker process still running: what the interpreter's shutdown did
    through multiprocessing's and concurrent.futures' exit handlers, which ``os._exit``
    skips. Every path through the engine stops its workers itself (tests/faults check it),
    so this finds none; it is the net under a path that does not."""
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:
        return
    for child in multiprocessing.active_children():
        child.kill()
        child.join(timeout=2)


def run(argv: list[str]) -> int:
    """Run the command line; return the exit code instead of exiting."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    if sys.stdout is None and (argv == ["--version"] or {"-h", "--help"} & set(options)):
        _error("standard output is closed", debug=False)  # plain Python: exit 0, nothing said
        return EXIT_UNUSABLE
    _catch_stop_signals()  # before the imports: a Ctrl-C during them is a stop, not a traceback
    debug = "--debug" in argv
    try:
        if argv == ["--version"]:
            # The one answer that needs neither the library nor typer, whose import and app
            # building cost more than the rest of Python's start-up (docs/design.md).
            print(version_line())
            return EXIT_OK
        import typer

        from hashpar.cli.app import load_commands
        from hashpar.cli.output import PipeClosed

        app = load_commands(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Terminated:
        return EXIT_TERMINATED
    except BrokenPipeError:
        return EXIT_PIPE_CLOSED
    except OSError as exc:  # stdout on a full disk, say
        _error(f"cannot write standard output: {exc.strerror or exc}", debug=False)
        return EXIT_UNUSABLE
    try:
        result = app(args=argv, prog_name="hashpar", standalone_mode=False)
        code = result if isinstance(result, int) else EXIT_OK
    except typer.Abort as exc:  # click (vendored by typer) turns KeyboardInterrupt into Abort
        if not isinstance(exc.__context__, KeyboardInterrupt):
            _error("aborted", debug)
        code = EXIT_INTERRUPTED
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except Terminated:
        code = EXIT_TERMINATED
    except typer.TyperException as exc:  # a usage error found by the argument parser
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]  # a click UsageError
        else:
            context = getattr(exc, "ctx", None)
            where = context.command_path if context is not None else "hashpar"
            message = " ".join(exc.format_message().split())  # click wraps choice lists
            message = message.replace(": Value error, ", ": ")  # pydantic's prefix, via typer
            _error(f"{message} (see '{where} --help')", debug)
        code = EXIT_UNUSABLE
    except HashparError as exc:
        _error(str(exc), debug)
        code = exc.exit_code
    except (PipeClosed, BrokenPipeError):
        code = EXIT_PIPE_CLOSED
    except MemoryError:
        _error("out of memory", debug)
        code = EXIT_UNUSABLE
    except OSError as exc:  # click writing help or a message to a full or broken stdout
        where = exc.filename if exc.filename is not None else "standard output"
        _error(f"cannot write {where}: {exc.strerror or exc}", debug)
        code = EXIT_UNUSABLE
    except Exception as exc:  # a bug: still one line and exit 2, never a traceback
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        _error(f"internal error ({detail}); please report it, with --debug's output", debug)
        code = EXIT_UNUSABLE
    if code == EXIT_PIPE_CLOSED:
        # Nobody reads stdout any more: point it at /dev/null so the final flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return code


def _catch_stop_signals() -> None:
    """SIGINT and SIGTERM stop the run (:func:`_stop`), unless hashpar was started with
    them ignored: a script's background job (``hashpar make ... &``) starts with SIGINT
    ignored, so that a Ctrl-C meant for the script does not reach it, and keeps it so, as
    the coreutils do."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop)


def version_line() -> str:
    """What ``hashpar --version`` prints."""
    from hashpar import __version__

    return f"hashpar {__version__}"


def _error(message: str, debug: bool) -> None:
    """One line on stderr, whatever the message holds: a newline, a terminal escape or a
    byte that is not UTF-8 in a path given on the command line is written escaped. If
    stderr is closed or full the line is lost, but the exit code still says what happened."""
    if sys.stderr is None:  # started with 2>&-: print(file=None) would write to stdout
        return
    with contextlib.suppress(OSError):
        if debug:
            import traceback  # 2 ms at start-up otherwise, for '--debug' only

            traceback.print_exc()
        from hashpar.names import one_line

        print(f"hashpar: error: {one_line(message)}", file=sys.stderr)
