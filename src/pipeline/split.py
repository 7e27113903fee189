"""Split: a seeded train/test split of the validated reference data.

For classification the split is stratified on the target, which keeps rare
classes in both halves, so test metrics are comparable from run to run. Rows
without a label (a nullable target) cannot be learned from or scored; they
are left out and counted.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError, run_main

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.features import Features
    from pipeline.params import SplitParams


def split_frame(frame: pd.DataFrame, features: Features, params: SplitParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    target = features.target
    frame = frame[frame[target].notna()]
    n_test = math.ceil(params.test_size * len(frame))  # as train_test_split rounds
    stratify = None
    if features.is_classification:
        counts = frame[target].value_counts()
        too_rare = counts[counts < 2]
        if not too_rare.empty:
            raise PipelineError(
                f"cannot stratify on {target!r}: class(es) {', '.join(map(str, too_rare.index))} have fewer than 2 rows"
            )
        if min(n_test, len(frame) - n_test) < len(counts):
            raise PipelineError(
                f"split.test_size={params.test_size} leaves fewer rows than the {len(counts)} classes "
                f"in one half of {len(frame)} rows"
            )
        stratify = frame[target]
    elif min(n_test, len(frame) - n_test) < 2:
        raise PipelineError(
            f"split.test_size={params.test_size} leaves fewer than 2 rows in one half of {len(frame)} labelled rows"
        )
    train, test = train_test_split(frame, test_size=params.test_size, random_state=params.seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m pipeline.split", description=__doc__.split("\n")[0]).parse_args(argv)
    from pipeline.features import contract_schema, features_of
    from pipeline.files import read_table, write_parquet
    from pipeline.params import load_params

    params = load_params()
    features = features_of(contract_schema())
    frame = read_table(params.paths.validated_reference)
    unlabelled = int(frame[features.target].isna().sum())
    if unlabelled:
        print(f"split: {unlabelled} row(s) without a {features.target!r} label left out", file=sys.stderr)
    train, test = split_frame(frame, features, params.split)
    write_parquet(train, params.paths.train)
    write_parquet(test, params.paths.test)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
