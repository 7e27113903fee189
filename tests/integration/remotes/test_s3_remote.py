"""An S3 remote on a real S3-compatible server: SeaweedFS on 127.0.0.1, with credentials enforced.

The round trip a team relies on (push, lose the cache and the workspace's data, pull,
get dvc.lock's bytes back) and the failures it meets first: wrong credentials, a
missing bucket, an unreachable endpoint. Each failure exits non-zero with a message
that names the problem and no traceback, and the local cache keeps every output.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_push_then_pull_into_a_wiped_workspace(workspace, s3_server, remote_checks):
    s3_server.add_remote(workspace, "s3remote", "round-trip")
    s3_server.store_credentials(workspace, "s3remote")
    remote_checks.credentials_stay_out_of_git(workspace, s3_server.access_key, s3_server.secret_key)
    outputs = remote_checks.outputs(workspace)

    workspace.dvc("push")
    pushed = s3_server.keys("round-trip/")
    for path, md5 in outputs.items():
        assert f"round-trip/files/md5/{md5[:2]}/{md5[2:]}" in pushed, f"{path} is not in the bucket"

    remote_checks.wipe_local_data(workspace)
    # The pull takes its credentials from the environment instead, the other way the README offers.
    for option in ("access_key_id", "secret_access_key"):
        workspace.dvc("remote", "modify", "--local", "--unset", "s3remote", option)
    workspace.dvc("pull", env=s3_server.credentials_env())
    remote_checks.assert_restored(workspace)


@pytest.mark.parametrize(
    ("credential", "phrases"),
    [
        ("secret_key", ("SignatureDoesNotMatch", "signature we calculated does not match")),
        ("access_key", ("InvalidAccessKeyId", "access key ID you provided does not exist")),
    ],
    ids=["wrong-secret-key", "unknown-access-key"],
)
def test_wrong_credentials_fail_clearly_and_keep_the_cache(workspace, s3_server, remote_checks, credential, phrases):
    s3_server.add_remote(workspace, "s3remote", "wrong-credentials")
    push = workspace.dvc("push", check=False, env=s3_server.credentials_env(**{credential: "not-the-right-one"}))
    remote_checks.assert_clear_failure(push, *phrases)
    remote_checks.assert_nothing_lost(workspace)
    assert not s3_server.keys("wrong-credentials/"), "a refused push wrote to the bucket"


def test_missing_bucket_fails_clearly_and_keeps_the_cache(workspace, s3_server, remote_checks):
    s3_server.add_remote(workspace, "s3remote", "data", bucket="no-such-bucket")
    push = workspace.dvc("push", check=False, env=s3_server.credentials_env())
    remote_checks.assert_clear_failure(push, "NoSuchBucket", "bucket does not exist")
    remote_checks.assert_nothing_lost(workspace)


def test_unreachable_endpoint_fails_clearly_and_keeps_the_cache(workspace, s3_server, remote_checks):
    port = remote_checks.unused_port()
    s3_server.add_remote(workspace, "s3remote", "data", endpoint=f"http://127.0.0.1:{port}")
    # botocore retries a refused connection for 5-15 s (random backoff) before the same
    # message; one attempt keeps the test short and changes nothing else.
    env = {**s3_server.credentials_env(), "AWS_MAX_ATTEMPTS": "1"}
    push = workspace.dvc("push", check=False, env=env)
    remote_checks.assert_clear_failure(push, "Could not connect to the endpoint URL", f"127\\.0\\.0\\.1:{port}/")
    remote_checks.assert_nothing_lost(workspace)
