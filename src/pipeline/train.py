"""Train: fit the scikit-learn pipeline named in params on the training split.

The preprocessing is built from the contract: numeric and categorical columns,
and the categories each may take. The task comes from the contract's target
(classes: a classifier; a number: a regressor). Histogram gradient boosting,
the default, handles missing values and categories natively and scales to
millions of rows; the random forest and the linear models (logistic regression
for classes, ridge for numbers) get imputation and one-hot encoding.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError, run_main

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from pipeline.features import Features
    from pipeline.params import TrainParams

# HistGradientBoosting's categorical features take at most 255 codes (one bin each).
MAX_CATEGORIES = 255


def build_model(features: Features, params: TrainParams) -> Pipeline:
    """An unfitted Pipeline: contract-driven preprocessing, then the estimator from params."""
    import numpy as np
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    check_model_fits_task(params.model, features.task)
    classify = features.is_classification
    if params.model == "hist_gradient_boosting":
        hp = params.hist_gradient_boosting

        def encode(categories):
            return OrdinalEncoder(
                categories=categories,
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,
                max_categories=MAX_CATEGORIES,
            )

        first_categorical = len(features.numeric)
        estimator = (HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor)(
            learning_rate=hp.learning_rate,
            max_iter=hp.max_iter,
            max_leaf_nodes=hp.max_leaf_nodes,
            l2_regularization=hp.l2_regularization,
            categorical_features=list(range(first_categorical, first_categorical + len(features.categorical))),
            random_state=params.seed,
        )
        model = _pipeline(features, "passthrough", encode, estimator)
        if features.nullable_extension:
            # Passed through, pandas' own null (pd.NA) cannot become a numpy array; as a frame it reaches
            # the estimator, which reads it as NaN. Only then: a frame per call costs a one-row request time.
            model.named_steps["preprocess"].set_output(transform="pandas")
        return model

    def one_hot(categories):
        return OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False)

    if params.model == "random_forest":
        hp = params.random_forest
        estimator = (RandomForestClassifier if classify else RandomForestRegressor)(
            n_estimators=hp.n_estimators,
            max_depth=hp.max_depth,
            min_samples_leaf=hp.min_samples_leaf,
            random_state=params.seed,
        )
        return _pipeline(features, SimpleImputer(strategy="median"), one_hot, estimator)
    if params.model == "ridge":
        estimator = Ridge(alpha=params.ridge.alpha)
    else:
        hp = params.logistic_regression
        estimator = LogisticRegression(C=hp.C, max_iter=hp.max_iter, random_state=params.seed)
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    return _pipeline(features, numeric, one_hot, estimator)


def check_model_fits_task(model: str, task: str) -> None:
    from pipeline.params import CLASSIFIERS_ONLY, REGRESSORS_ONLY

    wrong = CLASSIFIERS_ONLY if task == "regression" else REGRESSORS_ONLY
    if model in wrong:
        other = "ridge" if task == "regression" else "logistic_regression"
        raise ConfigError(
            f"params.yaml: train.model: {model} does not do {task}, which the contract's target asks for; "
            f"use hist_gradient_boosting, random_forest or {other}"
        )


def _pipeline(features: Features, numeric: object, encoder: Callable, estimator: object) -> Pipeline:
    """Numeric columns, then categorical ones with the contract's categories, then those learned from data."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    listed = [name for name in features.categorical if features.categories[name] is not None]
    learned = [name for name in features.categorical if features.categories[name] is None]
    parts = [("numeric", numeric, list(features.numeric))]
    if listed:
        parts.append(("categorical", encoder([list(features.categories[name]) for name in listed]), listed))
    if learned:
        parts.append(("learned_categorical", encoder("auto"), learned))
    return Pipeline([("preprocess", ColumnTransformer(parts, remainder="drop")), ("model", estimator)])


def fit_model(train: pd.DataFrame, features: Features, params: TrainParams) -> Pipeline:
    """The model fitted on the training split, or on a seeded sample of `train.max_rows` rows of it."""
    if params.max_rows is not None and len(train) > params.max_rows:
        train = train.sample(n=params.max_rows, random_state=params.seed).sort_index()
    model = build_model(features, params).fit(train[features.columns], train[features.target])
    bin_mapper = getattr(model[-1], "_bin_mapper", None)
    if bin_mapper is not None:
        # HistGradientBoosting keeps the fit-time thread count, which would make the saved
        # model's bytes depend on the machine's cores; it is not used for prediction.
        bin_mapper.n_threads = None
    return model


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m pipeline.train", description=__doc__.split("\n")[0]).parse_args(argv)
    from pipeline.features import contract_schema, features_of
    from pipeline.files import read_table
    from pipeline.model_store import save_model
    from pipeline.params import load_params

    params = load_params()
    features = features_of(contract_schema())
    check_model_fits_task(params.train.model, features.task)
    model = fit_model(read_table(params.paths.train), features, params.train)
    save_model(model, params.paths.model)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
