#!/usr/bin/python3
"""Peer of the score_transactions part of bench/anomaly/score.sh: the
features calo_recon.transaction_features gives for the stored transactions
(a CSV, one row of 9 numbers per transaction), standardized and fitted as
the prototype does (StandardScaler, IsolationForest 100 x 256,
contamination 0.01); times score_samples over every row, best of 2.
Prints: sklearn rows=N seconds=T rows_per_s=R"""
import sys
import time

import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.preprocessing import StandardScaler

X = StandardScaler().fit_transform(pd.read_csv(sys.argv[1], header=None).to_numpy())
model = IsolationForest(n_estimators=100, max_samples=256, contamination=0.01,
                        random_state=42).fit(X)
best = None
for _ in range(2):
    t0 = time.perf_counter()
    model.score_samples(X)
    t = time.perf_counter() - t0
    best = t if best is None or t < best else best
print("sklearn rows=%d seconds=%.3f rows_per_s=%.1f" % (len(X), best, len(X) / best))
