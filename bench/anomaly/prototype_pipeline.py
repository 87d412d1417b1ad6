#!/usr/bin/python3
"""Python peer of calo_recon's anomaly pipeline, for bench/anomaly/pipeline.sh.

  generate --rows N --seed S --out file.csv
      Deterministic synthetic wallet transactions with the columns of
      calo_recon.transactions: consistent balance chains per user, plus about
      0.2 % planted outliers (large spends, VAT above the amount, balance jumps).
  run --csv file.csv --flags flagged.txt --currencies c.csv [--seed S]
      [--features-out f.csv]
      The prototype's pipeline: CSV -> pandas -> the same features as
      calo_recon.transaction_features (README "Features"; the currencies'
      minor units from --currencies, a CSV of calo_recon.currencies) ->
      StandardScaler ->
      IsolationForest(contamination=0.01) -> flags; writes the flagged
      txn_ids, one a line, and prints "rows flagged seconds".
  compare-features ours.csv theirs.csv
      Whether the features written by run --features-out equal those of a
      CSV of txn_id and array_to_string(features, ',').
  jaccard a.txt b.txt
      Prints |A & B|, |A|, |B| and the Jaccard index of two id lists.

Run with Debian's /usr/bin/python3 (pandas, scikit-learn 1.2).
"""
import argparse
import sys
import time

CSV_COLUMNS = ["txn_id", "user_id", "txn_type", "source", "action", "currency",
               "amount", "vat", "old_balance", "new_balance", "payment_balance",
               "update_payment_balance", "metadata", "logged_at", "request_id",
               "message_id", "source_file"]


def generate(rows, seed, out):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_users = max(1, rows // 50)
    user = rng.integers(0, n_users, rows)
    credit = rng.random(rows) < 0.15
    amount = np.where(credit, rng.uniform(80, 120, rows), rng.uniform(8, 16, rows))
    seconds = np.sort(rng.uniform(0, 90 * 86400, rows)).round()
    outlier = rng.random(rows) < 0.002
    kind = rng.integers(0, 3, rows)
    big = outlier & (kind == 0)
    amount = np.where(big, amount * rng.uniform(20, 300, rows), amount).round(3)
    vat = (amount * 0.1).round(3)
    odd_vat = outlier & (kind == 1)
    vat = np.where(odd_vat, (amount * rng.uniform(2, 5, rows)).round(3), vat)
    signed_net = np.where(credit, amount - vat, vat - amount)

    df = pd.DataFrame({
        "txn_id": [f"T{i:08d}" for i in range(rows)],
        "user_id": [f"U{u:06d}" for u in user],
        "txn_type": np.where(credit, "CREDIT", "DEBIT"),
        "currency": np.where(user % 3 == 0, "SAR", "BHD"),
        "amount": amount, "vat": vat, "signed_net": signed_net,
        "logged_at": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(seconds, unit="s"),
    })
    # txn_ids follow time, so the chain order (logged_at, txn_id) is the row order
    opening = pd.Series(rng.uniform(200, 1000, n_users).round(3))
    before = df.groupby("user_id", sort=False)["signed_net"].cumsum() - df["signed_net"]
    df["old_balance"] = (opening.iloc[user].to_numpy() + before).round(3)
    jump = outlier & (kind == 2)
    df.loc[jump, "old_balance"] += rng.uniform(50000, 100000, int(jump.sum())).round(3)
    df["new_balance"] = (df["old_balance"] + df["signed_net"]).round(3)
    df["source"] = np.where(credit, "PAYMENT", "DELIVERY")
    df["action"] = np.where(credit, "RENEW_SUBSCRIPTION", "DELIVERY_DEDUCTION")
    for column in ["payment_balance", "update_payment_balance", "metadata",
                   "request_id", "message_id"]:
        df[column] = None
    df["source_file"] = "bench/anomaly"
    df["logged_at"] = df["logged_at"].dt.strftime("%Y-%m-%d %H:%M:%S+00")
    df[CSV_COLUMNS].to_csv(out, index=False, float_format="%.3f")


# The definitions of calo_recon's anomaly features (README "Features", the
# one home being src/core/anomaly_features.c), written as a notebook would.
MIN_HISTORY = 3            # earlier rows a usual amount or VAT rate needs
MIN_HOUR_HISTORY = 10      # earlier rows the usual hours need
HOUR_MARGIN = 2            # hours from the usual ones that still count as usual
REPEAT_WINDOW_SECS = 3600  # a repeat of the previous amount within this is a double charge
SECONDS_CAP = 86400        # seconds since the previous row count up to a day
RATE_BOUND = 10            # a VAT rate is held within +-10
CONTAMINATION = 0.01       # the share of rows flagged, as train_model(.., 0.01, ..)
FEATURES = ["amount_vs_usual", "vat_rate", "vat_rate_vs_usual", "hours_from_usual",
            "log_seconds_since_previous", "repeats_previous", "amount_scaled"]


def earlier_median(values, groups):
    """Per row, the median and count of the values of its group's earlier
    rows (groups are contiguous runs: the frame is in chain order)."""
    import numpy as np
    import pandas as pd

    s = pd.Series(values)
    g = s.groupby(groups, sort=False)
    median = g.expanding().median().reset_index(level=0, drop=True).sort_index()
    median = median.groupby(groups, sort=False).shift(1).to_numpy()
    count = g.cumcount().to_numpy()
    return median, count


def features(df, minor_units):
    """The columns of calo_recon.transaction_features, in its order.
    minor_units: currency -> decimals (calo_recon.currencies; 2 when unknown)."""
    import numpy as np
    import pandas as pd

    df = df.sort_values(["user_id", "logged_at", "txn_id"], kind="mergesort",
                        ignore_index=True)
    n = len(df)
    user = df["user_id"].to_numpy()
    first_of_user = np.ones(n, dtype=bool)
    first_of_user[1:] = user[1:] != user[:-1]
    user_no = np.cumsum(first_of_user) - 1
    amount = df["amount"].to_numpy(dtype=float)
    vat = df["vat"].to_numpy(dtype=float)
    change = (df["new_balance"] - df["old_balance"]).to_numpy(dtype=float)
    txn_type = df["txn_type"].to_numpy()
    direction = np.where(txn_type == "CREDIT", 1,
                         np.where(txn_type == "DEBIT", -1, np.sign(change))).astype(np.int64)
    magnitude = np.abs(amount)
    out = pd.DataFrame({"txn_id": df["txn_id"].to_numpy()})

    # amount_vs_usual: log2(|amount| / median |amount| of the user's earlier
    # rows of the same direction) to the nearest whole number
    avu = np.zeros(n)
    moving = (direction != 0) & (magnitude > 0)
    idx = np.flatnonzero(moving)
    med, cnt = earlier_median(magnitude[idx], user_no[idx] * 2 + (direction[idx] > 0))
    ok = (cnt >= MIN_HISTORY) & (med > 0)
    avu[idx[ok]] = np.rint(np.log2(magnitude[idx[ok]] / med[ok]))
    out["amount_vs_usual"] = avu + 0.0

    # vat_rate to 0.001 and its difference to the user's usual, to 0.01
    rate = np.zeros(n)
    vrv = np.zeros(n)
    has_amount = amount != 0
    idx = np.flatnonzero(has_amount)
    r = np.nan_to_num(vat[idx] / amount[idx], nan=0.0)
    r = np.rint(np.clip(r, -RATE_BOUND, RATE_BOUND) / 0.001) * 0.001
    rate[idx] = r
    med, cnt = earlier_median(r, user_no[idx])
    ok = cnt >= MIN_HISTORY
    vrv[idx[ok]] = np.rint((r[ok] - med[ok]) / 0.01) * 0.01
    out["vat_rate"] = rate + 0.0
    out["vat_rate_vs_usual"] = vrv + 0.0

    # hours_from_usual: the hours of the user's earlier rows as a bit set (a
    # bit is added once, at its first row, so a running sum is the union)
    logged = df["logged_at"]
    hour = logged.dt.hour.to_numpy().astype(np.int64)
    first_hour = ~pd.DataFrame({"u": user_no, "h": hour}).duplicated().to_numpy()
    bit = np.where(first_hour, np.left_shift(1, hour), 0)
    used = pd.Series(bit).groupby(user_no, sort=False).cumsum().to_numpy() - bit
    seen = pd.Series(user_no).groupby(user_no, sort=False).cumcount().to_numpy()
    away = np.full(n, 12)
    for d in range(11, -1, -1):
        hit = ((used >> ((hour + d) % 24)) & 1) | ((used >> ((hour + 24 - d) % 24)) & 1)
        away = np.where(hit == 1, d, away)
    out["hours_from_usual"] = np.where(seen >= MIN_HOUR_HISTORY,
                                       np.maximum(0, away - HOUR_MARGIN), 0).astype(float)

    # log_seconds_since_previous and repeats_previous
    seconds = logged.diff().dt.total_seconds().to_numpy()
    seconds[first_of_user] = -1.0
    capped = np.where((seconds < 0) | (seconds > SECONDS_CAP), SECONDS_CAP, seconds)
    out["log_seconds_since_previous"] = np.rint(np.log10(1.0 + capped)) + 0.0
    prev_direction = np.roll(direction, 1)
    prev_amount = np.roll(amount, 1)
    out["repeats_previous"] = ((seconds >= 0) & (seconds <= REPEAT_WINDOW_SECS) & (direction != 0)
                               & (direction == prev_direction)
                               & (amount == prev_amount)).astype(float)

    # amount_scaled: log10(1 + |amount| in thousands of minor units) to 0.1
    minor = df["currency"].map(minor_units).fillna(2).to_numpy(dtype=np.int64)
    out["amount_scaled"] = np.rint(np.log10(1.0 + magnitude * 10.0 ** (minor - 3)) / 0.1) * 0.1 + 0.0
    return out


def run(csv, flags, seed, currencies, features_out=None):
    started = time.monotonic()
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import IsolationForest
    from sklearn.preprocessing import StandardScaler

    minor_units = dict(pd.read_csv(currencies).itertuples(index=False, name=None))
    df = pd.read_csv(csv, usecols=["txn_id", "user_id", "txn_type", "currency", "amount", "vat",
                                   "old_balance", "new_balance", "logged_at"])
    df["logged_at"] = pd.to_datetime(df["logged_at"], utc=True)
    feats = features(df, minor_units)
    x = StandardScaler().fit_transform(feats[FEATURES].to_numpy())
    # what contamination=0.01 and predict() do, with the rows scored once:
    # fit() with a contamination scores every training row for its offset,
    # and predict() scores them again
    forest = IsolationForest(n_estimators=100, max_samples=256, contamination="auto",
                             random_state=seed).fit(x)
    scores = forest.score_samples(x)
    offset = np.percentile(scores, 100.0 * CONTAMINATION)
    flagged = feats["txn_id"].to_numpy()[scores < offset]
    with open(flags, "w") as f:
        f.write("".join(f"{t}\n" for t in sorted(flagged)))
    seconds = time.monotonic() - started
    if features_out:
        feats.sort_values("txn_id").to_csv(features_out, index=False, header=False,
                                           float_format="%.17g")
    print(len(feats), len(flagged), f"{seconds:.3f}")


def compare_features(ours, theirs):
    """Prints "equal" when two CSVs of txn_id and the 7 features (the second
    with the features in one quoted field) hold the same rows and features to
    within 1e-9 (the last bits of a value rounded to a step may differ), else
    how many rows differ, with an example."""
    import numpy as np
    import pandas as pd

    a = pd.read_csv(ours, header=None).sort_values(0, ignore_index=True)
    b = pd.read_csv(theirs, header=None).sort_values(0, ignore_index=True)
    fb = b[1].str.split(",", expand=True).astype(float).to_numpy()
    fa = a.iloc[:, 1:].to_numpy(dtype=float)
    if len(a) != len(b) or not (a[0].to_numpy() == b[0].to_numpy()).all():
        print(f"different rows: {len(a)} vs {len(b)}")
        return
    bad = np.flatnonzero((np.abs(fa - fb) > 1e-9).any(axis=1))
    if len(bad) == 0:
        print(f"equal ({len(a)} rows, max difference {np.abs(fa - fb).max():.1e})")
    else:
        i = bad[0]
        print(f"{len(bad)} rows differ, e.g. {a[0][i]}: {fa[i].tolist()} vs {fb[i].tolist()}")


def jaccard(a, b):
    first = set(open(a).read().split())
    second = set(open(b).read().split())
    union = first | second
    both = first & second
    print(len(both), len(first), len(second),
          f"{len(both) / len(union):.4f}" if union else "1.0000")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--rows", type=int, required=True)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--csv", required=True)
    r.add_argument("--flags", required=True)
    r.add_argument("--seed", type=int, default=42)
    r.add_argument("--currencies", required=True,
                   help="CSV code,minor_unit (calo_recon.currencies)")
    r.add_argument("--features-out", help="also write txn_id and the features (untimed)")
    c = sub.add_parser("compare-features")
    c.add_argument("ours")
    c.add_argument("theirs")
    j = sub.add_parser("jaccard")
    j.add_argument("a")
    j.add_argument("b")
    args = parser.parse_args(argv)
    if args.command == "generate":
        generate(args.rows, args.seed, args.out)
    elif args.command == "run":
        run(args.csv, args.flags, args.seed, args.currencies, args.features_out)
    elif args.command == "compare-features":
        compare_features(args.ours, args.theirs)
    else:
        jaccard(args.a, args.b)


if __name__ == "__main__":
    main(sys.argv[1:])
