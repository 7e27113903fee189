"""Preload: run a command (`dvc repro`) with the stages' heavy imports done once, in a server that forks each stage.

    python -m pipeline.preload -- dvc repro        (what `make run` does)

Each stage is its own `python -m pipeline.<stage>` process, and on small data most
of its time is importing pandas, pandera, scikit-learn (with scipy.stats) and
skops, again in every stage. This command starts a server that imports them once,
then runs the command with RATCHET_PRELOAD_SOCKET set. A stage started under it
(every command goes through `errors.run_main`) hands its module, arguments,
working directory, environment and standard streams to the server, which forks a
child that runs the module as `python -m` would; the stage process waits, passes
on signals, and exits with the child's status. It is the technique of Python's
multiprocessing forkserver, Rails' Spring and nailgun.

The server imports no project code: each child imports the current source. A
stage that does not match the server (another interpreter or flags, an
environment that differs beyond what DVC and the shell set) or that starts before
the server listens runs in its own process as always; one that arrives while the
server is still importing is forked with what it has so far and imports the rest
itself. The outputs are the same either way. The server stops with the command,
and on its own if this command dies. POSIX only; elsewhere the command just runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from pipeline import ENVIRONMENT_AT_START
from pipeline.errors import PipelineError, run_main

SOCKET_ENV = "RATCHET_PRELOAD_SOCKET"
# Set per stage by DVC (DVC_ROOT, DVC_STAGE) and by the shell that runs a stage's cmd: they may differ.
VOLATILE_ENV = frozenset({"DVC_ROOT", "DVC_STAGE", "PWD", "OLDPWD", "SHLVL", "_"})
# What the stages import, heavy to import and the same in every stage (project code is never preloaded).
PRELOADED = (  # in the order the stages first need them
    "yaml",
    "pydantic",
    "pandas",
    "pyarrow.parquet",
    "pandera.pandas",
    "pandera.backends.pandas.register",  # pandera's checking backends, imported at a schema's first validation
    "pandera.backends.pandas.builtin_checks",
    "pandera.strategies",
    "scipy.stats",
    "sklearn.model_selection",
    "sklearn.compose",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.inspection",
    "sklearn.calibration",
    "dvclive",
    "dvc.repo",  # DVCLive opens the DVC repository
    "dvc.scm",
    "dvc.repo.experiments",
    "dvc.repo.plots",
    "dvc.cachemgr",
    "dvc.data_cloud",
    "pyarrow.dataset",
)
_HEADER = struct.Struct(">I")
_CHECK_PARENT_SECONDS = 1.0
_RECEIVE_SECONDS = 10.0
_STOP_SECONDS = 30.0


# ---------------------------------------------------------------------------
# The stage's side: hand the run to the server, wait for its status.


def run_preloaded() -> int | None:
    """Run this process's `python -m` module in the preload server; None: not preloaded, run it here."""
    path = os.environ.get(SOCKET_ENV)
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if not path or spec is None or os.name != "posix":
        return None
    request = {
        "module": spec.name,
        "argv": sys.argv,
        "cwd": str(Path.cwd()),
        "path": sys.path,
        "env": dict(os.environ),
        "started_env": ENVIRONMENT_AT_START,
        "executable": sys.executable,
        "version": sys.version,
        "flags": list(sys.flags),
    }
    payload = json.dumps(request).encode()
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
        socket.send_fds(connection, [_HEADER.pack(len(payload))], [0, 1, 2])
        connection.sendall(payload)
        replies = connection.makefile("rb")
        started = replies.readline().split()
    except OSError:  # no server yet, or it went: this process runs the stage
        connection.close()
        return None
    if len(started) != 2 or started[0] != b"pid":  # refused: another interpreter or environment
        connection.close()
        return None
    child = int(started[1])
    forwarded: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        forwarded.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    with connection, replies:
        ended = replies.readline().split()
    if len(ended) == 2 and ended[0] == b"exit":
        return int(ended[1])
    if forwarded:  # the child died of the signal passed on to it, as this process would have
        return 128 + forwarded[-1]
    print(f"error: the preloaded run of {spec.name} ended without an exit status", file=sys.stderr)
    return 1


# ---------------------------------------------------------------------------
# The server: import once, fork a child per stage.


def mismatch(request: dict, env: dict[str, str]) -> str | None:
    """Why a stage cannot run in a server started in `env` (another interpreter, flags or environment), or None.

    Environments are compared as each process started, before its imports set variables in it.
    """
    if request["executable"] != sys.executable or request["version"] != sys.version:
        return f"another interpreter ({request['executable']})"
    if request["flags"] != list(sys.flags):
        return "other interpreter flags"
    theirs = request["started_env"]
    differ = sorted(key for key in (theirs.keys() | env.keys()) - VOLATILE_ENV if theirs.get(key) != env.get(key))
    if differ:
        return f"its environment differs in {', '.join(differ[:5])}{' ...' if len(differ) > 5 else ''}"
    return None


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _flags, _address = socket.recv_fds(connection, _HEADER.size, 3)
    while len(data) < _HEADER.size:
        more = connection.recv(_HEADER.size - len(data))
        if not more:
            raise OSError("the stage closed the connection")
        data += more
    (size,) = _HEADER.unpack(data)
    payload = bytearray()
    while len(payload) < size:
        more = connection.recv(min(size - len(payload), 1 << 16))
        if not more:
            raise OSError("the stage closed the connection")
        payload += more
    return json.loads(payload), fds


def _run_child(connection: socket.socket, fds: list[int], request: dict, imported_env: dict[str, str]) -> None:
    """In the forked child: become the stage's process, run its module, report its exit status."""
    import atexit
    import runpy
    import threading
    import traceback

    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update({key: value for key, value in request["env"].items() if key != SOCKET_ENV})
    os.environ.update(imported_env)
    sys.path[:] = request["path"]
    sys.argv[:] = request["argv"]
    if sys.stdout is not None:
        sys.stdout.reconfigure(line_buffering=os.isatty(1))
    connection.sendall(f"pid {os.getpid()}\n".encode())
    finished = threading.Event()

    def watch() -> None:  # the stage process is gone (killed): so is its run
        with contextlib.suppress(OSError):
            connection.recv(1)
        if not finished.is_set():
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()
    code = 1
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = 128 + signal.SIGINT
    except BaseException:  # a bug: its traceback, as `python -m` prints it
        traceback.print_exc()
    finally:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        finished.set()
        with contextlib.suppress(OSError):
            connection.sendall(f"exit {code}\n".encode())
        os._exit(code & 0xFF)


class _Server:
    """Forks a child per stage that connects; imports what the stages share in between, first thing."""

    def __init__(self, listener: socket.socket, path: str, parent: int, summary: Path | None) -> None:
        self.listener = listener
        self.path = path
        self.parent = parent
        self.summary = summary
        self.started_env = ENVIRONMENT_AT_START
        self.children: set[int] = set()
        self.served: list[str] = []
        self.refused: list[str] = []

    def preload(self) -> None:
        """Import PRELOADED (in stage order), serving whoever connects meanwhile with what is imported so far."""
        import importlib

        _forget_project_code()
        for name in PRELOADED:
            with contextlib.suppress(ImportError):  # a project may drop a library: its stages import what they use
                importlib.import_module(name)
            self.serve_waiting()
        from pipeline.model_store import _skops_io  # skops.io, the way the stages import it

        _skops_io()
        _forget_project_code()

    def serve_waiting(self) -> None:
        self.listener.settimeout(0)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.serve_one()

    def serve_one(self) -> None:
        """Accept one stage and fork its child; BlockingIOError or TimeoutError when none is waiting."""
        self.reap()
        connection, _address = self.listener.accept()
        connection.settimeout(_RECEIVE_SECONDS)
        with connection:
            try:
                request, fds = _receive(connection)
            except (OSError, ValueError):  # a stage that went away or is stuck: it never started here
                return
            connection.settimeout(None)
            why = mismatch(request, self.started_env)
            if why is not None:
                self.refused.append(f"{request.get('module')}: {why}")
                self.record()
                with contextlib.suppress(OSError):
                    connection.sendall(f"refused {why}\n".encode())
                for fd in fds:
                    os.close(fd)
                return
            imported_env = {key: value for key, value in os.environ.items() if self.started_env.get(key) != value}
            blocked = {signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
                self.listener.close()
                _run_child(connection, fds, request, imported_env)
            self.children.add(pid)
            self.served.append(request["module"])
            signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
            for fd in fds:
                os.close(fd)
            self.record()

    def record(self) -> None:
        """Write the summary as it grows: the command reads it even if it had to kill this server."""
        if self.summary is not None:
            partial = self.summary.with_suffix(".partial")
            partial.write_text(json.dumps({"served": self.served, "refused": self.refused}), encoding="utf-8")
            partial.replace(self.summary)

    def reap(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    self.children.discard(pid)

    def finish(self) -> NoReturn:
        """Stop: no socket left, the stages' runs stopped (they end with their stage processes anyway), exit."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            Path(self.path).unlink()
        self.reap()  # the stages that ended (their resource use counts towards this process's)
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if os.getppid() != self.parent:  # the command died without cleaning up: its scratch directory goes too
            import shutil

            shutil.rmtree(Path(self.path).parent, ignore_errors=True)
        sys.stderr.flush()
        os._exit(0)  # without tearing down the thousands of modules it imported: the command waits for this


def _forget_project_code() -> None:
    for name in [name for name in sys.modules if name == "pipeline" or name.startswith("pipeline.")]:
        del sys.modules[name]  # children import the project's code as it is now


def serve(path: str, parent: int, summary: Path | None = None) -> NoReturn:
    """Serve stages at `path` until SIGTERM or until `parent` is gone; exit."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server = _Server(listener, path, parent, summary)

    def stop(_signum: int, _frame: object) -> None:
        # SIGTERM mostly comes while the server imports. An exception raised here could be swallowed there
        # (ruamel.yaml guards an optional import with a bare `except:`): the handler stops the server itself.
        server.finish()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the stages; the command stops the server
    signal.signal(signal.SIGTERM, stop)
    try:
        listener.bind(f"{path}.binding")
    except OSError as error:  # e.g. a TMPDIR too long for a socket path: the stages run on their own
        print(f"preload: cannot listen at {path} ({error.strerror or error}); no stage preloaded", file=sys.stderr)
        server.finish()
    listener.listen(16)
    Path(f"{path}.binding").rename(path)  # the socket appears listening: none is refused before
    server.record()
    server.preload()
    listener.settimeout(_CHECK_PARENT_SECONDS)
    while os.getppid() == parent:
        with contextlib.suppress(TimeoutError):
            server.serve_one()
    server.finish()


# ---------------------------------------------------------------------------
# The command: start the server, run the command under it, stop the server.


def run_command(command: Sequence[str]) -> int:
    """Run `command` with a preload server beside it; its exit status."""
    import subprocess
    import tempfile

    if os.name != "posix":
        return subprocess.call(list(command))
    with tempfile.TemporaryDirectory(prefix="ratchet-preload-") as scratch:
        path = str(Path(scratch) / "socket")
        summary = Path(scratch) / "summary.json"
        env = {**os.environ, SOCKET_ENV: path}
        server = subprocess.Popen(
            [sys.executable, "-m", "pipeline.preload", "--serve", path, "--summary", str(summary)],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to the command and its stages, not to the server
        )
        handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            try:
                process = subprocess.Popen(list(command), env=env)
            except OSError as error:
                raise PipelineError(f"cannot run {command[0]!r}: {error.strerror}") from None
            # Ctrl-C reaches the command from the terminal, and the command decides what stops: this waits
            # for it, as DVC waits for its stages (set after the start: an ignored signal stays ignored
            # in a child). SIGTERM is passed on.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, lambda signum, _frame: process.send_signal(signum))
            code = process.wait()
            code = 128 - code if code < 0 else code  # killed by a signal: as a shell reports it
        finally:
            server.terminate()
            try:
                server.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:  # a server that does not stop is killed: the command has ended
                server.kill()
                server.wait()
            if summary.exists():
                print(_summary(json.loads(summary.read_text(encoding="utf-8")), server.returncode), file=sys.stderr)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
    return code


def _summary(runs: dict[str, list[str]], returncode: int | None) -> str:
    line = f"preload: {len(runs['served'])} stage run(s) forked from the preloaded server"
    if runs["refused"]:
        line += f"; in their own process: {'; '.join(runs['refused'])}"
    if returncode:  # the server exits 0 when told to stop
        how = f"killed by signal {-returncode}" if returncode < 0 else f"ended with status {returncode}"
        line += f" (the server was {how}, not stopped)"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.preload", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --: dvc repro ...")
    parser.add_argument("--serve", metavar="SOCKET", help=argparse.SUPPRESS)  # the server itself
    parser.add_argument("--summary", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, os.getppid(), args.summary)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run: python -m pipeline.preload -- dvc repro")
    return run_command(command)


if __name__ == "__main__":
    raise SystemExit(run_main(main, preloadable=False))
