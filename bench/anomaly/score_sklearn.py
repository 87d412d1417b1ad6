#!/usr/bin/python3
"""Peer of bench/anomaly/score.sh: fits scikit-learn's IsolationForest
(100 trees, max_samples 256, random_state 1) on a CSV (last column label),
writes its calo_recon JSON form, and times score_samples over every row.
Prints: sklearn rows=N seconds=T rows_per_s=R"""
import json
import sys
import time

import pandas as pd
from sklearn.ensemble import IsolationForest

sys.path.insert(0, __file__.rsplit("/bench/", 1)[0] + "/tools")
from sklearn_export import forest_json  # noqa: E402

X = pd.read_csv(sys.argv[1]).iloc[:, :-1].to_numpy()
model = IsolationForest(n_estimators=100, max_samples=256, random_state=1).fit(X)
with open(sys.argv[2], "w") as f:
    json.dump(forest_json(model, X.shape[1]), f)
best = None
for _ in range(2):
    t0 = time.perf_counter()
    model.score_samples(X)
    t = time.perf_counter() - t0
    best = t if best is None or t < best else best
print("sklearn rows=%d seconds=%.3f rows_per_s=%.1f" % (len(X), best, len(X) / best))
