#!/usr/bin/python3
"""Peer of bench/anomaly/fit.sh: scikit-learn IsolationForest fit time
(100 trees, max_samples 256) on a CSV (last column label), best of 2."""
import sys
import time

import pandas as pd
from sklearn.ensemble import IsolationForest

X = pd.read_csv(sys.argv[1]).iloc[:, :-1].to_numpy()
best = None
for seed in (1, 2):
    t0 = time.perf_counter()
    IsolationForest(n_estimators=100, max_samples=256, random_state=seed).fit(X)
    t = time.perf_counter() - t0
    best = t if best is None or t < best else best
print("  scikit-learn IsolationForest.fit on %d rows (in memory, numpy): %.3f s" % (len(X), best))
