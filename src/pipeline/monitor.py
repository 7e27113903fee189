"""Monitor: production traffic against the training data, and the decision to retrain or roll a canary back.

    python -m pipeline.monitor LOGS... [--labels FILE] [--window-days 7] [--until TIME] [--event REASON]
    python -m pipeline.monitor LOGS... --canary [--apply]

Reads the prediction logs of `pipeline.serve` and `pipeline.predict` (one JSON
line per prediction or refused request; a directory means every *.jsonl in
it) for a window that ends at the newest record (or `--until`), so the same
logs always give the same report, and writes reports/monitoring.{json,md,html}:

- input drift of the logged rows against the training split, by the drift
  stage's own core and verdicts (drift_columns), and drift of the
  predictions against the model's predictions on the training split;
- the share of requests refused for breaking the contract, by column and check;
- when labels arrive later (a file with the contract's id and target),
  the task's metrics on the window beside the test split's: concept drift;
- health: requests, refusals, error rate and latency percentiles, per model version.

Then the decision (params.yaml `retrain:`): retrain on input drift, a metric
drop, an old model or an event, written as `{"retrain": true, "because": [...]}`
and signalled by exit code 3, so a workflow can branch on it. With `--canary`,
the canary's traffic is compared with prod's (`canary:`): worse beyond the
thresholds, and `--apply` withdraws its assignment with a GTO tag (exit 4);
as good for long enough, it says the canary may be promoted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError, run_main

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.features import Features
    from pipeline.params import CanaryParams, DriftParams, Params, RetrainParams

EXIT_RETRAIN = 3
EXIT_CANARY_ROLLED_BACK = 4
HEADLINE = {"classification": "balanced_accuracy", "regression": "r2"}


def in_window(records: Sequence[dict], days: float, until: datetime | None) -> tuple[list[dict], datetime, datetime]:
    """The records of the `days` before `until` (default: the newest record), oldest first."""
    from pipeline.prediction_log import parse_time

    if not records:
        raise PipelineError("the logs hold no records")
    times = [parse_time(r["time"]) for r in records]
    end = until or max(times)
    start = end - timedelta(days=days)
    chosen = sorted(
        (r for r, t in zip(records, times, strict=True) if start < t <= end),
        key=lambda r: (r["time"], r["request_id"], r.get("row", 0)),
    )
    return chosen, start, end


def inputs_frame(records: Sequence[dict], features: Features) -> pd.DataFrame:
    """The logged rows' inputs, typed as the contract types them (they passed it when they were scored)."""
    import pandas as pd

    from pipeline.features import contract_schema

    rows = [r["inputs"] for r in records]
    frame = pd.DataFrame(rows)
    contract = contract_schema()
    for name, column in contract.columns.items():
        if name in frame.columns and column.dtype is not None:
            try:
                frame[name] = column.dtype.coerce(frame[name])
            except Exception:
                continue
    return frame


# What the window says


def health(records: Sequence[dict]) -> dict:
    """Requests, refusals, error rate and latency percentiles, overall and per model version."""
    import numpy as np

    def summary(chosen: Sequence[dict]) -> dict:
        requests: dict[str, dict] = {}
        for r in chosen:
            requests.setdefault(r["request_id"], r)  # one latency per request (rows share it)
        refused = [r for r in requests.values() if r["kind"] == "rejected"]
        latencies = np.asarray([r["latency_ms"] for r in requests.values() if r.get("latency_ms") is not None])
        quantiles = (
            {f"p{q}": round(float(np.percentile(latencies, q)), 3) for q in (50, 95, 99)}
            if len(latencies)
            else {"p50": None, "p95": None, "p99": None}
        )
        served_rows = sum(1 for r in chosen if r["kind"] == "prediction")
        return {
            "requests": len(requests),
            "rows": served_rows,
            "refused": len(refused),
            "error_rate": round(len(refused) / len(requests), 6) if requests else None,
            "latency_ms": quantiles,
        }

    versions = sorted({r.get("model_version", "?") for r in records})
    return {
        **summary(records),
        "by_version": {v: summary([r for r in records if r.get("model_version", "?") == v]) for v in versions},
    }


def answered(records: Sequence[dict]) -> list[dict]:
    """What clients were answered: a shadow canary's records (`shadow`) count only in the canary's verdict."""
    return [r for r in records if not r.get("shadow")]


def contract_failures(records: Sequence[dict]) -> dict:
    """The share of requests refused for breaking the contract, and how often each column and check failed."""
    requests = {r["request_id"]: r for r in records}
    refused = [r for r in requests.values() if r["kind"] == "rejected" and r.get("status") == 422]
    counts: dict[tuple, int] = {}
    for r in refused:
        for failure in r.get("failures", []):
            key = (str(failure.get("column")), str(failure.get("check")))
            counts[key] = counts.get(key, 0) + 1
    return {
        "requests": len(requests),
        "refused": len(refused),
        "share": round(len(refused) / len(requests), 6) if requests else None,
        "by_check": [
            {"column": column, "check": check, "requests": n}
            for (column, check), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ],
    }


def labelled(records: Sequence[dict], labels: pd.DataFrame | None, features: Features) -> pd.DataFrame | None:
    """Predictions joined with their late labels on the id (inputs, prediction, probabilities, label)."""
    import pandas as pd

    if labels is None:
        return None
    rows = [r for r in records if r["kind"] == "prediction" and r["inputs"].get(features.id) is not None]
    if not rows:
        return None
    frame = inputs_frame(rows, features)
    frame["_prediction"] = [r["prediction"] for r in rows]
    frame["_probabilities"] = [r.get("probabilities") for r in rows]
    frame["_version"] = [r.get("model_version") for r in rows]
    frame["_role"] = [r.get("role", "prod") for r in rows]
    frame["_time"] = [r["time"] for r in rows]
    frame[features.id] = frame[features.id].astype(str)
    truth = labels.rename(columns={features.target: "_label"})
    truth[features.id] = truth[features.id].astype(str)
    joined = frame.drop(columns=[features.target], errors="ignore").merge(truth, on=features.id, how="inner")
    return joined if len(joined) else pd.DataFrame()


def performance(joined: pd.DataFrame | None, features: Features) -> dict | None:
    """The task's metrics on the labelled rows of the window."""
    import numpy as np

    from pipeline.metrics import score_classification, score_regression

    if joined is None or joined.empty:
        return None
    if features.is_classification:
        classes = list(joined["_probabilities"].iloc[0].keys())
        lookup = {str(c): c for c in features.target_classes}
        proba = np.asarray([[p[c] for c in classes] for p in joined["_probabilities"]], dtype="float64")
        y_true = joined["_label"].map(lambda v: lookup.get(str(v), v))
        return score_classification(y_true, proba, [lookup.get(c, c) for c in classes], features.positive_class)
    return score_regression(joined["_label"].astype("float64"), joined["_prediction"].astype("float64"))


def monitor(
    records: Sequence[dict],
    reference: pd.DataFrame,
    reference_predictions: pd.Series,
    test_metrics: Mapping[str, float],
    labels: pd.DataFrame | None,
    features: Features,
    params: Params,
) -> dict:
    """Everything the window says: drift of inputs and predictions, contract failures, performance, health."""
    import pandas as pd

    from pipeline.drift_columns import as_dict, column_drift, feature_kinds, feature_report, target_kind

    predictions = [r for r in records if r["kind"] == "prediction" and r.get("role", "prod") == "prod"]
    report: dict = {
        "rows": len(predictions),
        "contract": contract_failures(answered(records)),
        "health": health(answered(records)),
        "drift": None,
        "prediction_drift": None,
        "performance": None,
    }
    if predictions:
        current = inputs_frame(predictions, features)
        present = {k: v for k, v in feature_kinds(features).items() if k in current.columns}
        report["drift"] = feature_report(reference, current, present, params.drift)
        served = pd.Series([r["prediction"] for r in predictions])
        kind = target_kind(features)
        report["prediction_drift"] = as_dict(
            column_drift("prediction", reference_predictions, served, kind, params.drift)
        )
    joined = labelled(predictions, labels, features)
    metrics = performance(joined, features)
    if metrics is not None:
        report["performance"] = {"window": metrics, "test": dict(test_metrics), "labelled_rows": len(joined)}
    return report


def decide(report: Mapping, params: RetrainParams, task: str, model_age_days: float | None, event: str | None) -> dict:
    """Retrain or not, and why: each trigger that fired is one reason."""
    because = []
    drift = report.get("drift")
    share = drift["dataset"]["share"] if drift else None
    if share is not None and share >= params.max_drift_share:
        because.append(
            f"input drift: {share:.2f} of the columns drifted (retrain.max_drift_share {params.max_drift_share:g})"
        )
    performance = report.get("performance")
    headline = HEADLINE[task]
    if performance:
        window, test = performance["window"].get(headline), performance["test"].get(headline)
        if window is not None and test is not None and test - window > params.max_metric_drop:
            because.append(
                f"performance: {headline} {window:.4f} on the window, {test:.4f} on the test split "
                f"(retrain.max_metric_drop {params.max_metric_drop:g})"
            )
    if model_age_days is not None and model_age_days > params.max_model_age_days:
        because.append(f"model age: {model_age_days:.0f} days (retrain.max_model_age_days {params.max_model_age_days})")
    if event:
        because.append(f"event: {event}")
    labelled_rows = performance["labelled_rows"] if performance else 0
    data_enough = labelled_rows >= params.min_labelled_rows
    return {
        "retrain": bool(because),
        "because": because,
        "labelled_rows": labelled_rows,
        "enough_new_labels": data_enough,
    }


def canary_verdict(
    records: Sequence[dict],
    labels: pd.DataFrame | None,
    features: Features,
    params: CanaryParams,
    drift: DriftParams | None = None,
) -> dict:
    """Canary against prod on the same window: roll back, promotable, or wait for more traffic.

    Besides the verdict's own measures (error rate, p99 latency, the headline
    metric), each side's contract failures and, with `drift`, the drift of the
    canary's predictions from prod's on the same window are reported.
    """
    roles = {role: [r for r in records if r.get("role", "prod") == role] for role in ("prod", "canary")}
    stats = {role: health(chosen) for role, chosen in roles.items()}
    versions = {
        role: sorted({r.get("model_version") for r in chosen if r.get("model_version")})
        for role, chosen in roles.items()
    }
    canary, prod = stats["canary"], stats["prod"]
    result = {
        "prod": {**prod, "versions": versions["prod"], "contract": contract_failures(roles["prod"])},
        "canary": {**canary, "versions": versions["canary"], "contract": contract_failures(roles["canary"])},
        "prediction_drift": prediction_shift(roles, features, drift),
    }
    if canary["requests"] < params.min_requests:
        return {
            **result,
            "action": "wait",
            "because": [f"{canary['requests']} canary requests, fewer than {params.min_requests}"],
        }
    worse = []
    if prod["error_rate"] is not None and canary["error_rate"] - prod["error_rate"] > params.max_error_rate_increase:
        worse.append(
            f"error rate {canary['error_rate']:.4f} against prod's {prod['error_rate']:.4f} "
            f"(canary.max_error_rate_increase {params.max_error_rate_increase:g})"
        )
    p99 = (canary["latency_ms"]["p99"], prod["latency_ms"]["p99"])
    if None not in p99 and p99[1] > 0 and p99[0] / p99[1] > params.max_latency_p99_ratio:
        worse.append(
            f"p99 latency {p99[0]:.1f} ms against prod's {p99[1]:.1f} ms "
            f"(canary.max_latency_p99_ratio {params.max_latency_p99_ratio:g})"
        )
    headline = HEADLINE[features.task]
    scores = {
        role: performance(labelled([r for r in chosen if r["kind"] == "prediction"], labels, features), features)
        for role, chosen in roles.items()
    }
    result["performance"] = scores
    if scores["canary"] and scores["prod"]:
        canary_score, prod_score = scores["canary"].get(headline), scores["prod"].get(headline)
        if None not in (canary_score, prod_score) and prod_score - canary_score > params.max_metric_drop:
            worse.append(
                f"{headline} {canary_score:.4f} against prod's {prod_score:.4f} "
                f"(canary.max_metric_drop {params.max_metric_drop:g})"
            )
    if worse:
        return {**result, "action": "rollback", "because": worse}
    if canary["requests"] >= params.promote_after_requests:
        return {**result, "action": "promote", "because": [f"as good as prod over {canary['requests']} requests"]}
    return {**result, "action": "wait", "because": [f"as good as prod so far, over {canary['requests']} requests"]}


def prediction_shift(roles: Mapping[str, Sequence[dict]], features: Features, drift: DriftParams | None) -> dict | None:
    """The canary's predictions against prod's on the same window, with the drift stage's test for the target."""
    import pandas as pd

    from pipeline.drift_columns import as_dict, column_drift, target_kind

    predicted = {
        role: pd.Series([r["prediction"] for r in chosen if r["kind"] == "prediction"])
        for role, chosen in roles.items()
    }
    if drift is None or predicted["prod"].empty or predicted["canary"].empty:
        return None
    return as_dict(column_drift("prediction", predicted["prod"], predicted["canary"], target_kind(features), drift))


# Writing it down


def markdown(report: Mapping) -> str:
    from pipeline.drift_render import markdown_summary
    from pipeline.markdown import text

    decision = report.get("decision")
    lines = [f"# Monitoring: {report['window']['start']} to {report['window']['end']}", ""]  # times this module wrote
    if decision is not None:
        verdict = "**Retrain**" if decision["retrain"] else "**No retrain needed**"
        lines += [f"{verdict}." + ("" if not decision["because"] else " Because:"), ""]
        lines += [f"- {text(reason)}" for reason in decision["because"]]
    canary = report.get("canary")
    if canary is not None:
        lines += ["", f"**Canary: {canary['action']}.**", ""] + [f"- {text(reason)}" for reason in canary["because"]]
        shift = canary.get("prediction_drift")
        if shift is not None and shift["judged"] and shift["method"]:
            moved = "drifted" if shift["drifted"] else "did not drift"
            lines += [f"- its predictions {moved} from prod's on the same window ({text(shift['method'])})"]
        elif shift is not None:
            lines += [f"- its predictions against prod's: {text(shift['note'] or 'no verdict')}"]
        refused = {role: canary[role]["contract"] for role in ("prod", "canary") if "contract" in canary[role]}
        lines += [
            f"- contract failures: {side['refused']} of {side['requests']} requests ({role})"
            for role, side in refused.items()
        ]
    h = report["health"]
    lines += [
        "",
        "## Health",
        "",
        "| model version | requests | refused | error rate | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for version, v in h["by_version"].items():
        q = v["latency_ms"]
        lines.append(
            f"| {text(version)} | {v['requests']} | {v['refused']} | {v['error_rate']} "
            f"| {q['p50']} | {q['p95']} | {q['p99']} |"
        )
    c = report["contract"]
    lines += [
        "",
        "## Contract failures",
        "",
        f"{c['refused']} of {c['requests']} requests refused (share {c['share']}).",
    ]
    if c["by_check"]:
        lines += ["", "| column | check | requests |", "|---|---|---|"]
        lines += [f"| {text(f['column'])} | {text(f['check'])} | {f['requests']} |" for f in c["by_check"]]
    if report["drift"]:
        lines += ["", "## Input drift", "", markdown_summary(report["drift"], top=10).rstrip()]
    performance = report["performance"]
    if performance:
        lines += [
            "",
            f"## Performance ({performance['labelled_rows']} labelled rows)",
            "",
            "| metric | window | test split |",
            "|---|---|---|",
        ]
        for name, value in performance["window"].items():
            test = performance["test"].get(name)
            lines.append(f"| {name} | {_number(value)} | {_number(test)} |")
    return "\n".join(lines) + "\n"


def _event(path: Path) -> str | None:
    """The retrain event file's reason, when the file exists (a workflow or a person put it there)."""
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip() or f"{path} exists"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def html(report: Mapping) -> str:
    from html import escape

    from pipeline.drift_render import render_html

    drift = render_html(report["drift"]) if report["drift"] else "<p>No predictions in the window.</p>"
    body = drift.split("<body>", 1)[-1].rsplit("</body>", 1)[0] if report["drift"] else drift
    summary = escape(
        json.dumps(
            {k: report[k] for k in ("window", "decision", "canary", "health", "contract") if k in report}, indent=2
        )
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Monitoring</title></head><body>'
        f"<h1>Monitoring</h1><pre>{summary}</pre>{body}</body></html>\n"
    )


def model_age_days(end: datetime) -> float | None:
    """Days between the last commit that changed dvc.lock (the model's) and the end of the window."""
    import subprocess

    from pipeline.prediction_log import parse_time

    done = subprocess.run(
        ["git", "log", "-1", "--format=%cI", "--", "dvc.lock"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        return None
    return (end - parse_time(done.stdout.strip())).total_seconds() / 86_400


def withdraw_canary(versions: Sequence[str], reasons: Sequence[str]) -> list[str]:
    """`gto deprecate model VERSION canary`: a tag that ends the canary assignment; history keeps it."""
    import subprocess

    from pipeline.model_source import ARTIFACT

    created = []
    for version in versions:
        message = "Canary rolled back: " + "; ".join(reasons)
        done = subprocess.run(
            ["gto", "deprecate", ARTIFACT, version, "canary", "-m", message[:500]],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise PipelineError(
                f"gto deprecate {ARTIFACT} {version} canary failed: {done.stderr.strip() or done.stdout.strip()}"
            )
        created.append(version)
    return created


def pull_request_text(report: Mapping) -> tuple[str, str]:
    """The retrain pull request's title and body: the reasons first, then the whole monitoring report."""
    from pipeline.markdown import one_line

    reasons = report["decision"]["because"]
    title = "Retrain: " + (one_line(reasons[0])[:100] if reasons else "no reason")
    if len(reasons) > 1:
        title += f" (and {len(reasons) - 1} more)"
    body = (
        "The monitor decided to retrain the model, on the data policy in params.yaml "
        "(`retrain.data`). This pull request carries the refreshed reference and the model "
        "trained on it; the usual PR report and quality gates judge it like any change. "
        "Nothing here merges itself: review it, then merge or close it.\n\n" + markdown(report)
    )
    return title, body


def promote_canary(versions: Sequence[str]) -> list[str]:
    """`gto assign model --version V --stage prod`, when canary.auto_promote allows it (off by default)."""
    import subprocess

    from pipeline.model_source import ARTIFACT

    if len(versions) != 1:
        raise PipelineError(f"the canary served {len(versions)} versions in the window; promote one by hand")
    command = ["gto", "assign", ARTIFACT, "--version", versions[0], "--stage", "prod", "-m", "Canary promoted"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PipelineError(f"gto assign {ARTIFACT} {versions[0]} prod failed: {done.stderr.strip()}")
    return list(versions)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.monitor", description=__doc__.split("\n")[0])
    parser.add_argument(
        "logs", nargs="*", help="prediction logs (*.jsonl files or directories; default: paths.prediction_logs)"
    )
    parser.add_argument("--labels", help="late ground truth: the id and the target (default: monitor.labels)")
    parser.add_argument(
        "--window-days", type=float, help="the window, in days before its end (default: monitor.window_days)"
    )
    parser.add_argument("--until", help="the window's end, ISO 8601 (default: the newest record)")
    parser.add_argument("--event", help="retrain for this reason (a workflow input); also retrain.event_file")
    parser.add_argument("--canary", action="store_true", help="compare the canary's traffic with prod's")
    parser.add_argument("--apply", action="store_true", help="with --canary: withdraw a worse canary with a GTO tag")
    parser.add_argument(
        "--pull-request", metavar="DIR", help="also write the retrain pull request's title.txt and body.md here"
    )
    args = parser.parse_args(argv)
    from pipeline.features import contract_schema, features_of
    from pipeline.files import read_json, read_table, write_json, write_text
    from pipeline.params import load_params
    from pipeline.prediction_log import log_files, parse_time, read_labels, read_logs
    from pipeline.predictions import PREDICTION, read_predictions

    params = load_params()
    features = features_of(contract_schema())
    files = log_files(args.logs or [params.paths.prediction_logs])
    until = parse_time(args.until) if args.until else None
    records, start, end = in_window(read_logs(files), args.window_days or params.monitor.window_days, until)
    label_path = args.labels or params.monitor.labels
    labels = read_labels(label_path, features) if label_path else None
    reference = read_table(params.paths.train)
    reference_predictions, _ = read_predictions(params.paths.predictions_reference)
    test_metrics = read_json(f"{params.paths.eval_dir}/metrics.json")
    report = monitor(records, reference, reference_predictions[PREDICTION], test_metrics, labels, features, params)
    report["window"] = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "days": (end - start).days,
        "logs": [str(f) for f in files],
    }
    event = args.event or _event(Path(params.retrain.event_file))
    report["decision"] = decide(report, params.retrain, features.task, model_age_days(end), event)
    exit_code = EXIT_RETRAIN if report["decision"]["retrain"] else 0
    if args.canary:
        report["canary"] = canary_verdict(records, labels, features, params.canary, params.drift)
        if report["canary"]["action"] == "rollback":
            if args.apply:
                report["canary"]["withdrawn"] = withdraw_canary(
                    report["canary"]["canary"]["versions"], report["canary"]["because"]
                )
            exit_code = EXIT_CANARY_ROLLED_BACK
        elif report["canary"]["action"] == "promote" and params.canary.auto_promote and args.apply:
            canary = report["canary"]
            canary["promoted"] = promote_canary(canary["canary"]["versions"])
    write_json(report, params.paths.monitoring_report)
    write_text(markdown(report), params.paths.monitoring_summary)
    if args.pull_request:
        title, body = pull_request_text(report)
        write_text(title + "\n", Path(args.pull_request) / "title.txt")
        write_text(body, Path(args.pull_request) / "body.md")
    write_text(html(report), params.paths.monitoring_html)
    print(markdown(report), file=sys.stderr)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(run_main(main))
