"""An SSH remote on a real OpenSSH server on 127.0.0.1, with key authentication only.

The same round trip as the S3 remote (push, lose the cache and the workspace's data,
pull, get dvc.lock's bytes back), and the failures: a key the server does not accept
and a port nothing listens on, each with a clear message, no traceback and the local
cache intact.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_push_then_pull_into_a_wiped_workspace(workspace, ssh_server, remote_checks, tmp_path):
    store = tmp_path / "ssh-remote"
    ssh_server.add_remote(workspace, "sshremote", store)
    remote_checks.credentials_stay_out_of_git(workspace, str(ssh_server.key))
    outputs = remote_checks.outputs(workspace)

    workspace.dvc("push")
    for path, md5 in outputs.items():
        assert (store / "files" / "md5" / md5[:2] / md5[2:]).is_file(), f"{path} did not reach the server"

    remote_checks.wipe_local_data(workspace)
    workspace.dvc("pull")
    remote_checks.assert_restored(workspace)


def test_unauthorized_key_fails_clearly_and_keeps_the_cache(workspace, ssh_server, remote_checks, tmp_path):
    store = tmp_path / "ssh-remote"
    ssh_server.add_remote(workspace, "sshremote", store, key=ssh_server.unauthorized_key)
    push = workspace.dvc("push", check=False)
    remote_checks.assert_clear_failure(push, f"Permission denied for user {ssh_server.user} on host 127\\.0\\.0\\.1")
    remote_checks.assert_nothing_lost(workspace)
    assert not store.exists(), "a refused push wrote to the server"


def test_unreachable_port_fails_clearly_and_keeps_the_cache(workspace, ssh_server, remote_checks, tmp_path):
    port = remote_checks.unused_port()
    ssh_server.add_remote(workspace, "sshremote", tmp_path / "ssh-remote", port=port)
    push = workspace.dvc("push", check=False)
    remote_checks.assert_clear_failure(push, f"Connect call failed \\('127\\.0\\.0\\.1', {port}\\)")
    remote_checks.assert_nothing_lost(workspace)
