"""Tests of the bundled sample data (Palmer penguins) and the model trained on it.

They hold only while the project still has the sample: the ingest stage in
dvc.yaml. A project that swapped in its own data (`dvc remove ingest`, or
made without the sample) skips them; copier leaves this directory out of
projects made without the sample data.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _has_the_sample() -> bool:
    stages = (yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8")) or {}).get("stages", {})
    return "ingest" in stages and (ROOT / "src/pipeline/ingest.py").exists()


# Collected only while the sample is there: without it, its modules (pipeline.ingest) may be gone too.
collect_ignore_glob = [] if _has_the_sample() else ["test_*.py"]
