"""Ingest: bring the bundled sample data into the project as two raw CSV files.

The Palmer penguins data ships inside the `palmerpenguins` wheel, so a fresh
clone needs no download and no remote. The three field seasons give a natural
production batch: the latest season (`ingest.current_study`) becomes the
"current" batch that drift checks compare against; earlier seasons are the
labelled reference data. Replace this stage with `dvc add` or `dvc import-url`
to bring your own data.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib.resources import files
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError, PipelineError, run_main

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.params import IngestParams

_RENAME = {
    "Species": "species",
    "Island": "island",
    "Clutch Completion": "clutch_completion",
    "Sex": "sex",
    "Culmen Length (mm)": "culmen_length_mm",
    "Culmen Depth (mm)": "culmen_depth_mm",
    "Flipper Length (mm)": "flipper_length_mm",
    "Body Mass (g)": "body_mass_g",
    "Delta 15 N (o/oo)": "delta_15n",
    "Delta 13 C (o/oo)": "delta_13c",
}


def read_bundled_penguins() -> pd.DataFrame:
    """The raw LTER table as shipped in the palmerpenguins package."""
    import pandas as pd

    with (files("palmerpenguins") / "data" / "penguins-raw.csv").open("rb") as handle:
        return pd.read_csv(handle)


def tidy_penguins(raw: pd.DataFrame) -> pd.DataFrame:
    """Snake-case columns, short species names, lower-case sex; a stable id per bird and season.

    The 11 birds whose sex was not recorded carry no label, so they are left out.
    """
    frame = raw.rename(columns=_RENAME)
    frame.insert(0, "sample_id", raw["studyName"] + "-" + raw["Individual ID"])
    frame["species"] = frame["species"].str.split().str[0]
    frame["sex"] = frame["sex"].str.lower()
    return frame.loc[frame["sex"].isin(["female", "male"]), ["sample_id", *_RENAME.values()]]


def split_by_study(raw: pd.DataFrame, params: IngestParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Earlier seasons are the reference; the season named in params is the current batch."""
    studies = sorted(raw["studyName"].unique())
    if params.current_study not in studies:
        raise PipelineError(f"params.yaml: ingest.current_study {params.current_study!r} is not one of {studies}")
    is_current = raw["studyName"] == params.current_study
    return tidy_penguins(raw[~is_current]).reset_index(drop=True), tidy_penguins(raw[is_current]).reset_index(drop=True)


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m pipeline.ingest", description=__doc__.split("\n")[0]).parse_args(argv)
    from pipeline.files import write_csv
    from pipeline.params import load_params

    params = load_params()
    if params.ingest is None:
        raise ConfigError("params.yaml: the ingest stage needs an ingest: section (ingest.current_study)")
    reference, current = split_by_study(read_bundled_penguins(), params.ingest)
    write_csv(reference, params.paths.raw_reference)
    write_csv(current, params.paths.raw_current)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
