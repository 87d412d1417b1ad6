#!/usr/bin/python3
"""Exports scikit-learn models in the JSON forms calo_recon imports.

Run with Debian's /usr/bin/python3 (scikit-learn 1.2). The CSV's last column
is the label; every other column is a feature.

  sklearn_export.py iforest DATA.csv --json MODEL.json --scores SCORES.txt
        [--seed 0] [--n-estimators 100] [--max-samples auto] [--pickle MODEL.pkl]
      Fits an IsolationForest (or loads --pickle when the file exists), writes
      the calo_recon.iforest JSON form (iforest_from_json) and, one per line,
      each row's score -score_samples(X), the s(x) of calo_recon.iforest_score.
  sklearn_export.py auc DATA.csv [--seeds 0,1,2,3,4] [--n-estimators 100]
      Prints the mean ROC AUC of scikit-learn's IsolationForest over the seeds.
  sklearn_export.py scaler DATA.csv --json SCALER.json --transformed OUT.csv
      Fits a StandardScaler; writes the calo_recon.scaler JSON form and the
      transformed rows (one CSV line per row, shortest exact decimals).
"""
import argparse
import json
import os
import pickle
import sys

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler


def load(path):
    data = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] < 2:
        sys.exit(f"{path}: need at least one feature column and a label column")
    return data[:, :-1], data[:, -1]


def forest_json(model, n_features):
    """The calo_recon JSON form of a fitted IsolationForest."""
    if model._max_features != n_features:
        sys.exit("only forests that use every feature (max_features=1.0) can be exported")
    trees = []
    for est in model.estimators_:
        t = est.tree_
        trees.append({
            "children_left": [int(v) for v in t.children_left],
            "children_right": [int(v) for v in t.children_right],
            "feature": [int(v) for v in t.feature],
            "threshold": [float(v) for v in t.threshold],
            "n_node_samples": [int(v) for v in t.n_node_samples],
        })
    return {
        "format": "calo_recon.iforest",
        "version": 1,
        "source": "scikit-learn %s" % __import__("sklearn").__version__,
        "n_features": int(n_features),
        "n_trees": len(trees),
        "sample_size": int(model.max_samples_),
        "extension_level": 0,
        # scikit-learn rounds X to float32 before descending its trees
        "input_dtype": "float32",
        "trees": trees,
    }


def cmd_iforest(args):
    X, _ = load(args.csv)
    if args.pickle and os.path.exists(args.pickle):
        with open(args.pickle, "rb") as f:
            model = pickle.load(f)
    else:
        max_samples = args.max_samples if args.max_samples == "auto" else int(args.max_samples)
        model = IsolationForest(n_estimators=args.n_estimators, max_samples=max_samples,
                                random_state=args.seed).fit(X)
        if args.pickle:
            with open(args.pickle, "wb") as f:
                pickle.dump(model, f)
    with open(args.json, "w") as f:
        json.dump(forest_json(model, X.shape[1]), f)
    scores = -model.score_samples(X)
    with open(args.scores, "w") as f:
        for s in scores:
            f.write(repr(float(s)) + "\n")


def cmd_auc(args):
    X, y = load(args.csv)
    aucs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        model = IsolationForest(n_estimators=args.n_estimators, random_state=seed).fit(X)
        aucs.append(roc_auc_score(y, -model.score_samples(X)))
    print("%.6f" % (sum(aucs) / len(aucs)))


def cmd_scaler(args):
    X, _ = load(args.csv)
    sc = StandardScaler().fit(X)
    with open(args.json, "w") as f:
        json.dump({
            "n_features": int(X.shape[1]),
            "n_samples": int(sc.n_samples_seen_),
            "mean": [float(v) for v in sc.mean_],
            "var": [float(v) for v in sc.var_],
            "scale": [float(v) for v in sc.scale_],
        }, f)
    with open(args.transformed, "w") as f:
        for row in sc.transform(X):
            f.write(",".join(repr(float(v)) for v in row) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("iforest")
    a.add_argument("csv")
    a.add_argument("--json", required=True)
    a.add_argument("--scores", required=True)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--n-estimators", type=int, default=100)
    a.add_argument("--max-samples", default="auto")
    a.add_argument("--pickle")
    a.set_defaults(func=cmd_iforest)
    a = sub.add_parser("auc")
    a.add_argument("csv")
    a.add_argument("--seeds", default="0,1,2,3,4")
    a.add_argument("--n-estimators", type=int, default=100)
    a.set_defaults(func=cmd_auc)
    a = sub.add_parser("scaler")
    a.add_argument("csv")
    a.add_argument("--json", required=True)
    a.add_argument("--transformed", required=True)
    a.set_defaults(func=cmd_scaler)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
