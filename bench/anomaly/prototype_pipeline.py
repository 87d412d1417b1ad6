#!/usr/bin/python3
"""Python peer of calo_recon's anomaly pipeline, for bench/anomaly/pipeline.sh.

  generate --rows N --seed S --out file.csv
      Deterministic synthetic wallet transactions with the columns of
      calo_recon.transactions: consistent balance chains per user, plus about
      0.2 % planted outliers (large spends, VAT above the amount, balance jumps).
  run --csv file.csv --flags flagged.txt [--seed S]
      The prototype's pipeline: CSV -> pandas -> the same features as
      calo_recon.transaction_features -> StandardScaler ->
      IsolationForest(contamination=0.01) -> flags; writes the flagged
      txn_ids, one a line, and prints "rows flagged seconds".
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
FEATURES = ["amount", "vat", "net", "balance_change", "old_balance", "hour_of_day",
            "seconds_since_previous", "amount_vs_user_median", "direction"]


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


def features(df):
    """The columns of calo_recon.transaction_features, in its order."""
    import numpy as np

    df = df.sort_values(["user_id", "logged_at", "txn_id"], kind="mergesort")
    out = df[["txn_id"]].copy()
    out["amount"] = df["amount"]
    out["vat"] = df["vat"]
    out["net"] = df["amount"] - df["vat"]
    out["balance_change"] = df["new_balance"] - df["old_balance"]
    out["old_balance"] = df["old_balance"]
    out["hour_of_day"] = df["logged_at"].dt.hour.astype(float)
    gap = df.groupby("user_id", sort=False)["logged_at"].diff().dt.total_seconds()
    out["seconds_since_previous"] = gap.fillna(-1.0)
    median = df.groupby("user_id", sort=False)["amount"].transform("median").abs()
    out["amount_vs_user_median"] = df["amount"] / median.where(median >= 0.0001, 1.0)
    change_sign = np.sign(out["balance_change"])
    out["direction"] = np.select([df["txn_type"] == "CREDIT", df["txn_type"] == "DEBIT"],
                                 [1.0, -1.0], change_sign)
    return out.fillna(0.0)


def run(csv, flags, seed):
    started = time.monotonic()
    import pandas as pd
    from sklearn.ensemble import IsolationForest
    from sklearn.preprocessing import StandardScaler

    df = pd.read_csv(csv, usecols=["txn_id", "user_id", "txn_type", "amount", "vat",
                                   "old_balance", "new_balance", "logged_at"])
    df["logged_at"] = pd.to_datetime(df["logged_at"], utc=True)
    feats = features(df)
    x = StandardScaler().fit_transform(feats[FEATURES].to_numpy())
    forest = IsolationForest(n_estimators=100, max_samples=256, contamination=0.01,
                             random_state=seed).fit(x)
    flagged = feats["txn_id"].to_numpy()[forest.predict(x) == -1]
    with open(flags, "w") as f:
        f.write("".join(f"{t}\n" for t in sorted(flagged)))
    print(len(feats), len(flagged), f"{time.monotonic() - started:.3f}")


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
    j = sub.add_parser("jaccard")
    j.add_argument("a")
    j.add_argument("b")
    args = parser.parse_args(argv)
    if args.command == "generate":
        generate(args.rows, args.seed, args.out)
    elif args.command == "run":
        run(args.csv, args.flags, args.seed)
    else:
        jaccard(args.a, args.b)


if __name__ == "__main__":
    main(sys.argv[1:])
