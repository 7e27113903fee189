"""Train: fit the scikit-learn pipeline named in params on the training split.

The preprocessing is built from the contract: numeric and categorical columns,
and the categories each may take. Histogram gradient boosting, the default,
handles missing values and categories natively and scales to millions of rows;
logistic regression and random forest get imputation and one-hot encoding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from pipeline.contract import Features, features_of, schema
from pipeline.errors import run_main
from pipeline.files import read_table
from pipeline.model_store import save_model
from pipeline.params import TrainParams, load_params


def build_model(features: Features, params: TrainParams) -> Pipeline:
    """An unfitted Pipeline: contract-driven preprocessing, then the estimator from params."""
    categories = [list(features.categories[name]) for name in features.categorical]
    if params.model == "hist_gradient_boosting":
        hp = params.hist_gradient_boosting
        encode = OrdinalEncoder(categories=categories, handle_unknown="use_encoded_value", unknown_value=np.nan)
        first_categorical = len(features.numeric)
        estimator = HistGradientBoostingClassifier(
            learning_rate=hp.learning_rate,
            max_iter=hp.max_iter,
            max_leaf_nodes=hp.max_leaf_nodes,
            l2_regularization=hp.l2_regularization,
            categorical_features=list(range(first_categorical, first_categorical + len(categories))),
            random_state=params.seed,
        )
        return _pipeline(features, "passthrough", encode, estimator)
    one_hot = OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False)
    if params.model == "random_forest":
        hp = params.random_forest
        estimator = RandomForestClassifier(
            n_estimators=hp.n_estimators,
            max_depth=hp.max_depth,
            min_samples_leaf=hp.min_samples_leaf,
            random_state=params.seed,
        )
        return _pipeline(features, SimpleImputer(strategy="median"), one_hot, estimator)
    hp = params.logistic_regression
    estimator = LogisticRegression(C=hp.C, max_iter=hp.max_iter, random_state=params.seed)
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    return _pipeline(features, numeric, one_hot, estimator)


def _pipeline(features: Features, numeric: object, categorical: object, estimator: object) -> Pipeline:
    columns = ColumnTransformer(
        [("numeric", numeric, list(features.numeric)), ("categorical", categorical, list(features.categorical))],
        remainder="drop",
    )
    return Pipeline([("preprocess", columns), ("model", estimator)])


def fit_model(train: pd.DataFrame, features: Features, params: TrainParams) -> Pipeline:
    model = build_model(features, params).fit(train[features.columns], train[features.target])
    bin_mapper = getattr(model[-1], "_bin_mapper", None)
    if bin_mapper is not None:
        # HistGradientBoosting keeps the fit-time thread count, which would make the saved
        # model's bytes depend on the machine's cores; it is not used for prediction.
        bin_mapper.n_threads = None
    return model


def main(argv: Sequence[str] | None = None) -> int:
    params = load_params()
    features = features_of(schema())
    model = fit_model(read_table(params.paths.train), features, params.train)
    save_model(model, params.paths.model)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
