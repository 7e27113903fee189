"""Regenerate the twins that follow a real file line for line (`make twins`, after editing one).

uv.lock and pyproject.toml differ per project only in the project's name,
description and author; dvc.yaml only in whether the ingest stage is kept. The drift test in
test_copier.py fails when a twin falls behind its real file.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def marker(expression: str) -> str:
    return "{" * 2 + f" {expression} " + "}" * 2


# file -> (line in the real file, line in the twin)
SUBSTITUTIONS = {
    "uv.lock": [('\nname = "ratchet"\nversion = ', f'\nname = "{marker("project_slug")}"\nversion = ')],
    "pyproject.toml": [
        ('\nname = "ratchet"\n', f'\nname = "{marker("project_slug")}"\n'),
        (
            '\ndescription = "A DVC + scikit-learn project template whose model quality only moves forward."\n',
            f"\ndescription = {marker('description | tojson')}\n",
        ),
        (
            '\nauthors = [{ name = "The Ratchet authors" }]\n',
            f"\nauthors = [{{ name = {marker('author | tojson')} }}]\n",
        ),
    ],
}


def dvc_yaml_twin(text: str) -> str:
    """dvc.yaml with the ingest stage (and its comment) kept only when the project keeps the sample data."""
    start, end = text.index("  # Outs written literally"), text.index("  validate:")
    return text[:start] + "{% if keep_sample_data %}" + text[start:end] + "{% endif %}" + text[end:]


def main() -> None:
    for name, substitutions in SUBSTITUTIONS.items():
        text = (ROOT / name).read_text(encoding="utf-8")
        for real, twin in substitutions:
            if real not in text:
                raise SystemExit(f"{name}: expected {real.strip()!r}")
            text = text.replace(real, twin, 1)
        (ROOT / f"{name}.jinja").write_text(text, encoding="utf-8")
    dvc_yaml = (ROOT / "dvc.yaml").read_text(encoding="utf-8")
    (ROOT / "dvc.yaml.jinja").write_text(dvc_yaml_twin(dvc_yaml), encoding="utf-8")


if __name__ == "__main__":
    main()
