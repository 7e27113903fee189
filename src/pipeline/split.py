"""Split: a seeded, stratified train/test split of the validated reference data.

Stratifying on the target keeps rare classes in both halves, so test metrics
are comparable from run to run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from sklearn.model_selection import train_test_split

from pipeline.contract import features_of, schema
from pipeline.errors import PipelineError, run_main
from pipeline.files import read_table, write_parquet
from pipeline.params import SplitParams, load_params


def split_frame(frame: pd.DataFrame, target: str, params: SplitParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    counts = frame[target].value_counts()
    too_rare = counts[counts < 2]
    if not too_rare.empty:
        raise PipelineError(
            f"cannot stratify on {target!r}: class(es) {', '.join(map(str, too_rare.index))} have fewer than 2 rows"
        )
    n_test = math.ceil(params.test_size * len(frame))  # as train_test_split rounds
    if min(n_test, len(frame) - n_test) < len(counts):
        raise PipelineError(
            f"split.test_size={params.test_size} leaves fewer rows than the {len(counts)} classes "
            f"in one half of {len(frame)} rows"
        )
    train, test = train_test_split(frame, test_size=params.test_size, random_state=params.seed, stratify=frame[target])
    return train.reset_index(drop=True), test.reset_index(drop=True)


def main(argv: Sequence[str] | None = None) -> int:
    params = load_params()
    frame = read_table(params.paths.validated_reference)
    train, test = split_frame(frame, features_of(schema()).target, params.split)
    write_parquet(train, params.paths.train)
    write_parquet(test, params.paths.test)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
