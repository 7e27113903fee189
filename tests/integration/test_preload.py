"""`python -m pipeline.preload -- dvc repro` (what `make run` runs): every stage forked from one server that has
the heavy imports done, byte-identical results, the same failures, signals passed on, no process left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# A command started before the server listens runs in its own process; these tests wait so that it is served.
WAIT_FOR_SERVER = 'for i in $(seq 600); do [ -S "$RATCHET_PRELOAD_SOCKET" ] && break; sleep 0.05; done; '
SERVED = re.compile(r"preload: (\d+) stage run\(s\) forked from the preloaded server")
SLEEPER = """
import os
import time

from pipeline.errors import run_main


def main(argv):
    print(os.getpid(), flush=True)
    time.sleep(300)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
"""


def _served(stderr: str) -> int:
    found = SERVED.search(stderr)
    assert found, stderr
    return int(found[1])


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _parent(int(entry.name)) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pid: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid), f"process {pid} is still running"


def test_a_preloaded_repro_forks_every_stage_and_changes_no_byte(workspace):
    before = workspace.lock_md5s()
    result = workspace.python("-m", "pipeline.preload", "--", "dvc", "repro", "-f")
    stages = workspace.stages()
    assert set(result.stages_run) == set(stages), result.output
    ours = [name for name, stage in stages.items() if str(stage["cmd"]).startswith("python -m pipeline.")]
    assert _served(result.stderr) == len(ours), result.stderr
    assert "in their own process" not in result.stderr
    assert workspace.porcelain() == "", workspace.git("diff").stdout
    assert workspace.lock_md5s() == before


ENV_DUMP = """
import json
import os
import sys

import sklearn  # sets variables in os.environ as it loads, in a stage's own process too

from pipeline.errors import run_main


def main(argv):
    print(json.dumps({"env": dict(os.environ), "argv": sys.argv, "cwd": os.getcwd(), "path": sys.path}))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
"""


def test_a_preloaded_stage_sees_what_it_would_see_in_its_own_process(project_copy):
    # A stage of the copy's own: it imports scikit-learn at the top, before handing over.
    (project_copy.path / "src/pipeline/envdump.py").write_text(ENV_DUMP, encoding="utf-8")
    own = json.loads(project_copy.python("-m", "pipeline.envdump").stdout)
    script = WAIT_FOR_SERVER + "python -m pipeline.envdump"
    preloaded = project_copy.python("-m", "pipeline.preload", "--", "sh", "-c", script)
    assert _served(preloaded.stderr) == 1
    seen = json.loads(preloaded.stdout)
    shell = {"PWD", "OLDPWD", "SHLVL", "_"}  # what the shell in between sets
    assert {k: v for k, v in seen["env"].items() if k not in shell} == {
        k: v for k, v in own["env"].items() if k not in shell
    }
    assert (seen["argv"], seen["cwd"], seen["path"]) == (own["argv"], own["cwd"], own["path"])


def test_a_failing_stage_fails_the_same_way_preloaded(project_copy):
    bad = project_copy.path / "bad-params.yaml"
    bad.write_text((project_copy.path / "params.yaml").read_text() + "\nunknown_section: {}\n")
    own = project_copy.python("-m", "pipeline.params", str(bad), check=False)
    preloaded = project_copy.python(
        "-m", "pipeline.preload", "--", "sh", "-c", WAIT_FOR_SERVER + 'exec python -m pipeline.params "$0"', str(bad),
        check=False,
    )  # fmt: skip
    assert own.returncode == preloaded.returncode == 2
    assert own.stderr.startswith("error: ")
    assert "unknown_section" in own.stderr
    assert preloaded.stdout == own.stdout
    assert preloaded.stderr.startswith(own.stderr)
    assert _served(preloaded.stderr) == 1


def test_a_stage_in_another_environment_runs_in_its_own_process_with_the_same_result(project_copy):
    own = project_copy.python("-m", "pipeline.params", "--help")
    helps = "python -m pipeline.params --help && RATCHET_TEST_OTHER=1 python -m pipeline.params --help"
    script = WAIT_FOR_SERVER + helps
    preloaded = project_copy.python("-m", "pipeline.preload", "--", "sh", "-c", script)
    assert preloaded.stdout == own.stdout * 2
    assert _served(preloaded.stderr) == 1
    assert "in their own process: pipeline.params: its environment differs in RATCHET_TEST_OTHER" in preloaded.stderr


def test_a_command_that_cannot_run_is_a_one_line_error(project_copy):
    missing = project_copy.python("-m", "pipeline.preload", "--", "no-such-command-here", check=False)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: cannot run 'no-such-command-here'"), missing.stderr
    assert "Traceback" not in missing.stderr
    nothing = project_copy.python("-m", "pipeline.preload", check=False)
    assert nothing.returncode == 2
    assert "give the command to run" in nothing.stderr


class _Sleeper:
    """`python -m sleeper` under the preload command: the stage process, its run in the server, the server."""

    def __init__(self, copy, source: str = SLEEPER, own_session: bool = False) -> None:
        (copy.path / "sleeper.py").write_text(source, encoding="utf-8")
        self.command = subprocess.Popen(
            ["python", "-m", "pipeline.preload", "--", "sh", "-c", WAIT_FOR_SERVER + "exec python -m sleeper"],
            cwd=copy.path,
            env=copy.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=own_session,
        )
        self.run = int(self.command.stdout.readline())
        children = _children(self.command.pid)
        self.server = next(pid for pid in children if "--serve" in Path(f"/proc/{pid}/cmdline").read_text())
        self.stage = next(pid for pid in children if pid != self.server)

    def stop(self) -> None:
        for pid in (self.command.pid, self.stage, self.run, self.server):
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        if self.command.returncode is None:
            self.command.communicate(timeout=60)


@pytest.fixture
def sleeper(project_copy):
    started = _Sleeper(project_copy)
    yield started
    started.stop()


def test_the_run_is_forked_by_the_server_and_a_signal_to_the_stage_reaches_it(sleeper):
    assert _parent(sleeper.run) == sleeper.server != sleeper.stage
    os.kill(sleeper.stage, signal.SIGTERM)
    _out, err = sleeper.command.communicate(timeout=60)
    assert sleeper.command.returncode == 128 + signal.SIGTERM, err
    for pid in (sleeper.run, sleeper.server):
        _wait_gone(pid)


def test_a_killed_stage_process_takes_its_run_along(sleeper):
    os.kill(sleeper.stage, signal.SIGKILL)
    _out, err = sleeper.command.communicate(timeout=60)
    assert sleeper.command.returncode == 128 + signal.SIGKILL, err
    _wait_gone(sleeper.run)
    _wait_gone(sleeper.server)


def test_when_the_preload_command_is_killed_its_server_and_runs_stop(sleeper):
    serving = Path(f"/proc/{sleeper.server}/cmdline").read_text().split("\0")
    scratch = Path(serving[serving.index("--serve") + 1]).parent
    assert scratch.is_dir()
    os.kill(sleeper.command.pid, signal.SIGKILL)
    for pid in (sleeper.server, sleeper.run, sleeper.stage):  # the stage process: "ended without an exit status"
        _wait_gone(pid)
    assert not scratch.exists()  # the command's temporary directory, which it could not remove


def test_sigterm_to_the_preload_command_stops_the_command_its_stages_and_the_server(sleeper):
    os.kill(sleeper.command.pid, signal.SIGTERM)
    _out, err = sleeper.command.communicate(timeout=60)
    assert sleeper.command.returncode == 128 + signal.SIGTERM, err
    for pid in (sleeper.stage, sleeper.run, sleeper.server):
        _wait_gone(pid)


def test_where_no_socket_can_listen_every_stage_runs_in_its_own_process(project_copy, tmp_path):
    too_long = tmp_path / ("d" * 120)  # a Unix socket's path has room for about 108 bytes
    too_long.mkdir()
    own = project_copy.python("-m", "pipeline.params", "--help")
    preloaded = project_copy.run(
        "python", "-m", "pipeline.preload", "--", "python", "-m", "pipeline.params", "--help",
        env={"TMPDIR": str(too_long)},
    )  # fmt: skip
    assert preloaded.stdout == own.stdout
    assert "preload: cannot listen at" in preloaded.stderr
    assert "Traceback" not in preloaded.stderr


SLOW_TO_STOP = SLEEPER.replace(
    "    time.sleep(300)\n",
    "    try:\n        time.sleep(300)\n"
    "    except KeyboardInterrupt:\n        time.sleep(2)  # cleaning up\n        raise\n",
)


def test_ctrl_c_twice_stops_the_stage_and_the_command_waits_for_it(project_copy):
    """Ctrl-C goes to the terminal's foreground process group (here the command's own session), twice
    while the stage is still stopping: the stage stops, the preload command waits for it and says nothing."""
    sleeper = _Sleeper(project_copy, SLOW_TO_STOP, own_session=True)
    try:
        for _ in range(2):
            os.killpg(sleeper.command.pid, signal.SIGINT)
            time.sleep(0.5)
        _out, err = sleeper.command.communicate(timeout=60)
    finally:
        sleeper.stop()
    assert sleeper.command.returncode == 128 + signal.SIGINT, err
    assert "KeyboardInterrupt" in err  # the stage's own, as `python -m sleeper` alone prints it
    assert "in run_command" not in err  # ... and none from the preload command
    for pid in (sleeper.run, sleeper.server):
        _wait_gone(pid)


@pytest.mark.parametrize("seconds", [0, 0.5, 1, 1.5, 2.5, 3.5])
def test_a_command_that_ends_while_the_server_imports_stops_it_cleanly(project_copy, seconds):
    """SIGTERM can reach the server in the middle of an import, which a library may wrap in `except Exception`."""
    script = WAIT_FOR_SERVER + f"sleep {seconds}"  # it listens first, then imports for seconds
    done = project_copy.python("-m", "pipeline.preload", "--", "sh", "-c", script)
    assert _served(done.stderr) == 0  # the summary: the server stopped on SIGTERM, not killed after waiting


SWALLOWER = """
import time

try:  # as ruamel.yaml imports its optional C parser: a bare `except:` around an import
    time.sleep(120)
except:  # noqa: E722
    pass
time.sleep(120)
"""


def test_sigterm_stops_the_server_even_inside_an_import_that_swallows_every_exception(project_copy, tmp_path):
    """The stop is not an exception raised into whatever the server is doing: a bare `except:` cannot keep it."""
    (project_copy.path / "swallower.py").write_text(SWALLOWER, encoding="utf-8")
    path, summary = tmp_path / "socket", tmp_path / "summary.json"
    serve = "import sys; from pipeline import preload; preload.PRELOADED = ('swallower',); preload.main(sys.argv[1:])"
    server = subprocess.Popen(
        ["python", "-c", serve, "--serve", str(path), "--summary", str(summary)], cwd=project_copy.path,
        env=project_copy.env(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not path.is_socket() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.is_socket()
        time.sleep(1)  # in the import
        server.terminate()
        _out, err = server.communicate(timeout=20)
    finally:
        server.kill()
    assert server.returncode == 0, err
    assert not path.exists()
    assert json.loads(summary.read_text()) == {"served": [], "refused": []}


def test_a_server_that_is_killed_still_leaves_its_count_and_the_command_says_it_was_killed(sleeper):
    serving = Path(f"/proc/{sleeper.server}/cmdline").read_text().split("\0")
    summary = Path(serving[serving.index("--summary") + 1])
    deadline = time.monotonic() + 30
    while not (summary.exists() and json.loads(summary.read_text())["served"]) and time.monotonic() < deadline:
        time.sleep(0.05)  # the server records a run right after forking it
    os.kill(sleeper.server, signal.SIGKILL)
    os.kill(sleeper.stage, signal.SIGTERM)  # passed on to its run, which outlived the server
    _out, err = sleeper.command.communicate(timeout=60)
    assert sleeper.command.returncode == 128 + signal.SIGTERM, err
    assert _served(err) == 1
    assert "(the server was killed by signal 9, not stopped)" in err
    _wait_gone(sleeper.run)
