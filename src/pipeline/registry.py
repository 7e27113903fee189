"""Registry: check a GTO tag against dvc.yaml, and find the version a rollback puts back.

The model registry is git tags in GTO's format: `model@v1.2.0` registers a
version (a commit), `model#prod#3` assigns a stage to one. `gto` writes them and
`dvc artifacts get` reads them, but the two look for artifacts in different
places: DVC in dvc.yaml's `artifacts:`, GTO 1.10 only in an `artifacts.yaml`,
and without one it tags any name. `declared` closes that gap before `make
register` tags a commit, and `check` before a deploy acts on a tag: the tag
must name an artifact dvc.yaml declares at the tagged commit. `check` prints
what the tag means as key=value lines, ready for `$GITHUB_OUTPUT`. GTO has no
rollback either: `rollback-target` names the version that was in the stage
before the current one, for `gto assign --force` to re-assign.

    python -m pipeline.registry check 'model#prod#3'
    python -m pipeline.registry declared model --rev HEAD
    python -m pipeline.registry rollback-target model --stage prod

The cores are pure functions of the tags (`TagRef`) and dvc.yaml's contents;
`main` reads both from git.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.baseline import read_committed, resolve_revision
from pipeline.errors import PipelineError, run_main


class RegistryError(PipelineError):
    """A tag the registry cannot act on, or nothing to roll back to."""


@dataclass(frozen=True)
class TagRef:
    """An annotated git tag (GTO ignores lightweight ones): its name, tagger time and the commit it points to."""

    name: str
    time: int
    commit: str


@dataclass(frozen=True)
class GtoTag:
    artifact: str
    action: str  # register, deregister, assign, unassign or deprecate
    version: str | None = None
    stage: str | None = None
    counter: int = 0


@dataclass(frozen=True)
class Release:
    """What a registration or assignment tag names, as `check` prints it."""

    name: str
    version: str
    stage: str
    path: str
    commit: str

    def lines(self) -> str:
        """key=value lines for `$GITHUB_OUTPUT`: every value is one line, or nothing is printed."""
        for key, value in vars(self).items():
            if any(char in str(value) for char in "\r\n\x00"):
                raise RegistryError(f"the release's {key} {value!r} spans lines; refusing to print it as an output")
        return "".join(f"{key}={value}\n" for key, value in vars(self).items())


def parse_tag(tag: str) -> GtoTag | None:
    """A tag in GTO's format, read with GTO's own pattern; None for any other tag."""
    from gto.constants import tag_re, tag_to_name

    match = tag_re.match(tag)
    if match is None:
        return None
    cancelled = match["cancel"] == "!"
    if match["version"]:
        action = "deregister" if cancelled else "register"
    elif match["stage"]:
        action = "unassign" if cancelled else "assign"
    else:
        action = "deprecate"
    return GtoTag(tag_to_name(match["artifact"]), action, match["version"], match["stage"], int(match["counter"] or 0))


def registered_versions(refs: Sequence[TagRef], artifact: str) -> dict[str, str]:
    """Commit -> version, for the artifact's versions that are registered and not deregistered since."""
    events = [(ref, tag) for ref in refs if (tag := parse_tag(ref.name)) and tag.artifact == artifact and tag.version]
    versions: dict[str, str] = {}
    for ref, tag in sorted(events, key=lambda event: (event[0].time, event[1].action == "deregister")):
        if tag.action == "register":
            versions[ref.commit] = str(tag.version)
        elif versions.get(ref.commit) == tag.version:
            del versions[ref.commit]
    return versions


def artifact_path(declared: Mapping[str, Mapping], artifact: str, commit: str) -> str:
    """The path dvc.yaml's `artifacts:` (`declared`, at `commit`) gives the artifact; an error when it has none.

    The path is checked before anyone writes to it: relative, inside the repository, one line.
    """
    if artifact not in declared:
        names = ", ".join(sorted(declared)) or "none"
        raise RegistryError(
            f"dvc.yaml at {commit[:8]} declares no artifact {artifact!r} under `artifacts:` (declared: {names})"
        )
    entry = declared[artifact]
    path = str(entry.get("path", "")) if isinstance(entry, Mapping) else ""
    parts = PurePosixPath(path).parts
    if (
        not path
        or any(char in path for char in "\r\n\x00\\")
        or PurePosixPath(path).is_absolute()
        or ".." in parts
        or parts[:1] == (".git",)
    ):
        raise RegistryError(
            f"dvc.yaml at {commit[:8]}: artifact {artifact!r} has path {path!r}; it must be a relative path "
            "inside the repository, on one line"
        )
    return path


def check_tag(tag: str, refs: Sequence[TagRef], declared: Mapping[str, Mapping]) -> Release:
    """The release a tag names, if it registers or assigns an artifact that `declared` (dvc.yaml's) holds."""
    parsed = parse_tag(tag)
    if parsed is None:
        raise RegistryError(f"{tag!r} is not a GTO tag (NAME@vX.Y.Z or NAME#STAGE#N)")
    if parsed.action not in ("register", "assign"):
        raise RegistryError(f"{tag!r} is a GTO {parsed.action} tag: only registrations and assignments name a release")
    ref = next((r for r in refs if r.name == tag), None)
    if ref is None:
        raise RegistryError(f"no annotated tag {tag!r} in this repository")
    path = artifact_path(declared, parsed.artifact, ref.commit)
    version = parsed.version or registered_versions(refs, parsed.artifact).get(ref.commit)
    if version is None:
        raise RegistryError(
            f"{tag!r} points at {ref.commit[:8]}, where no version of {parsed.artifact!r} is registered"
        )
    return Release(parsed.artifact, version, parsed.stage or "", path, ref.commit)


def rollback_target(refs: Sequence[TagRef], artifact: str, stage: str) -> str:
    """The version that was in `stage` before the current one: what a rollback re-assigns.

    Assignments are ordered by tagger time, then GTO's counter, as
    `dvc artifacts get --stage` orders them. Rolling back twice returns to
    where the first rollback started; older versions are named explicitly.
    """
    versions = registered_versions(refs, artifact)
    assigned = [
        (ref.time, tag.counter, versions[ref.commit])
        for ref in refs
        if (tag := parse_tag(ref.name))
        and (tag.artifact, tag.action, tag.stage) == (artifact, "assign", stage)
        and ref.commit in versions
    ]
    history = [version for _, _, version in sorted(assigned)]
    if not history:
        raise RegistryError(f"no registered version of {artifact!r} has been in stage {stage!r}")
    current = history[-1]
    earlier = next((version for version in reversed(history) if version != current), None)
    if earlier is None:
        raise RegistryError(
            f"{current} is the only version of {artifact!r} that has been in {stage!r}: nothing to roll back to"
        )
    return earlier


def version_in_stage(artifact: str, stage: str, repo: Path = Path()) -> str:
    """The version a stage holds, as GTO reads the tags (`gto show`): unassignments and deprecations end a hold.

    DVC's own `artifacts show --stage` reads only assignment tags, so a
    withdrawn canary would still look assigned there.
    """
    from gto.api import find_versions_in_stage
    from gto.exceptions import GTOException
    from scmrepo.exceptions import SCMError

    try:
        held = find_versions_in_stage(str(repo), artifact, stage)
    except (GTOException, SCMError, ValueError) as error:
        raise RegistryError(f"cannot read the registry for stage {stage!r}: {error}") from None
    if isinstance(held, list):
        held = held[0] if held else None
    if held is None:
        raise RegistryError(
            f"no {artifact!r} in stage {stage!r} of the registry (`gto show` lists who holds each stage): "
            f"assign one with `make promote VERSION=... STAGE={stage}`"
        )
    return str(held.version)


def read_tags(repo: Path = Path()) -> list[TagRef]:
    """Every annotated tag in the repository, with its tagger time and the commit it points to."""
    done = subprocess.run(
        ["git", "for-each-ref", "refs/tags", "--format=%(refname:strip=2)%09%(taggerdate:unix)%09%(*objectname)"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = (line.split("\t") for line in done.stdout.splitlines())
    return [TagRef(name, int(time), commit) for name, time, commit in rows if time and commit]


def declared_artifacts(commit: str, repo: Path = Path()) -> dict[str, dict]:
    """dvc.yaml's `artifacts:` section at a commit (empty when it has none)."""
    import yaml

    text = read_committed(commit, "dvc.yaml", repo)
    dvc_yaml = yaml.safe_load(text) if text else None
    return (dvc_yaml or {}).get("artifacts") or {}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.registry", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("check", help="check a GTO tag against dvc.yaml; print name, version, stage, path")
    command.add_argument("tag", help="a registration (model@v1.2.0) or assignment (model#prod#3) tag")
    command = commands.add_parser("declared", help="print the artifact's path; exit 1 unless dvc.yaml declares it")
    command.add_argument("artifact", help="the artifact's name in dvc.yaml")
    command.add_argument("--rev", default="HEAD", help="the git revision whose dvc.yaml to read (default: HEAD)")
    command = commands.add_parser("rollback-target", help="print the version that was in the stage before")
    command.add_argument("artifact", help="the artifact's name in dvc.yaml")
    command.add_argument("--stage", default="prod", help="default: prod")
    args = parser.parse_args(argv)
    refs = read_tags()
    if args.command == "check":
        ref = next((r for r in refs if r.name == args.tag), None)
        print(check_tag(args.tag, refs, declared_artifacts(ref.commit) if ref else {}).lines(), end="")
    elif args.command == "declared":
        commit = resolve_revision(args.rev)
        if commit is None:
            raise RegistryError(f"no git revision {args.rev!r}")
        print(artifact_path(declared_artifacts(commit), args.artifact, commit))
    else:
        print(rollback_target(refs, args.artifact, args.stage))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
