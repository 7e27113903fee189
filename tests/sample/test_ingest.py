"""Ingest, the sample-data stage: real seasons, no leaks between reference and current.

Projects made from the template without the sample data leave this file behind.
"""

from __future__ import annotations

import pytest

from pipeline.checks import check_frame
from pipeline.errors import PipelineError
from pipeline.ingest import read_bundled_penguins, split_by_study
from pipeline.params import IngestParams


@pytest.fixture(scope="module")
def seasons(params):
    return split_by_study(read_bundled_penguins(), params.ingest)


def test_reference_and_current_are_disjoint_seasons(seasons, params):
    reference, current = seasons
    season = params.ingest.current_study
    assert current["sample_id"].str.startswith(f"{season}-").all()
    assert not reference["sample_id"].str.startswith(f"{season}-").any()
    assert len(reference) > 0
    assert set(reference["sample_id"]).isdisjoint(current["sample_id"])


def test_ingested_ids_are_unique_and_both_batches_pass_the_contract(seasons, contract):
    for name, frame in zip(("reference", "current"), seasons, strict=True):
        assert frame["sample_id"].is_unique
        report, _ = check_frame(frame, contract, name)
        assert report.passed, report.failures


def test_unknown_study_is_a_pipeline_error():
    with pytest.raises(PipelineError, match=r"ingest\.current_study 'PAL1999'"):
        split_by_study(read_bundled_penguins(), IngestParams(current_study="PAL1999"))
