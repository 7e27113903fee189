"""The floor of batch scoring: `predict_proba` on a frame already in memory (batch_benchmark.py runs it).

    python benchmarks/bare_predict.py FILE.parquet MODEL.skops

Reads the whole file into one frame (the features only, as parquet stores
them), loads the model, then times one `predict_proba` call on the frame
(`predict` for a regressor). Prints {"read_seconds", "predict_proba_seconds",
"rows"} as JSON.
"""

import json
import sys
import time

import pandas as pd

from pipeline.features import contract_schema, features_of
from pipeline.model_store import load_model


def main(path: str, model_path: str) -> None:
    features = features_of(contract_schema())
    model = load_model(model_path)
    started = time.perf_counter()
    X = pd.read_parquet(path, columns=features.columns)
    read = time.perf_counter() - started
    started = time.perf_counter()
    if features.is_classification:
        model.predict_proba(X)
    else:
        model.predict(X)
    seconds = time.perf_counter() - started
    print(json.dumps({"read_seconds": read, "predict_proba_seconds": seconds, "rows": len(X)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
