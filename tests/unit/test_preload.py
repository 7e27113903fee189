"""The preload server's one decision: which stages it may run (the rest run in their own process)."""

from __future__ import annotations

import os
import sys

from pipeline.preload import VOLATILE_ENV, mismatch


def _request(**changes) -> dict:
    request = {
        "module": "pipeline.train",
        "executable": sys.executable,
        "version": sys.version,
        "flags": list(sys.flags),
        "env": dict(os.environ),
    }
    changes.setdefault("started_env", changes.get("env", request["env"]))
    request.update(changes)
    return request


def test_a_stage_from_the_same_interpreter_and_environment_runs_in_the_server():
    assert mismatch(_request(), dict(os.environ)) is None


def test_what_dvc_and_the_shell_set_per_stage_may_differ():
    env = {**os.environ, **{key: f"stage-{key}" for key in VOLATILE_ENV}}
    assert mismatch(_request(env=env), dict(os.environ)) is None


def test_any_other_difference_in_the_environment_is_named():
    env = {key: value for key, value in os.environ.items() if key != "PATH"}
    env["OMP_NUM_THREADS_FOR_A_TEST"] = "3"
    why = mismatch(_request(env=env), dict(os.environ))
    assert why == "its environment differs in OMP_NUM_THREADS_FOR_A_TEST, PATH"


def test_many_differences_are_summed_up():
    env = {**os.environ, **{f"EXTRA_{n}": "1" for n in range(7)}}
    assert mismatch(_request(env=env), dict(os.environ)).endswith("EXTRA_4 ...")


def test_another_interpreter_or_its_flags_run_on_their_own():
    assert mismatch(_request(executable="/usr/bin/python3.99"), dict(os.environ)) == (
        "another interpreter (/usr/bin/python3.99)"
    )
    flags = list(sys.flags)
    flags[0] = 1 - flags[0]
    assert mismatch(_request(flags=flags), dict(os.environ)) == "other interpreter flags"


def test_what_a_stage_s_own_imports_set_is_not_compared():
    started = dict(os.environ)
    env = {**started, "KMP_INIT_AT_FORK": "FALSE"}  # scikit-learn, imported before the stage handed over
    assert mismatch(_request(env=env, started_env=started), dict(os.environ)) is None
