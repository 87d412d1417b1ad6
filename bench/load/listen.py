"""LISTEN calo_recon_alerts until the stop file appears; writes one line per
notification (one per inserting statement): first_alert_id last_alert_id alerts."""
import json, os, select, sys
import psycopg2

dbname, stop_file, out_file = sys.argv[1:4]
conn = psycopg2.connect(dbname=dbname)
conn.autocommit = True
conn.cursor().execute("LISTEN calo_recon_alerts")
open(out_file + ".ready", "w").close()
ids = []
idle_after_stop = 0
while True:
    if select.select([conn], [], [], 0.5)[0]:
        conn.poll()
        while conn.notifies:
            p = json.loads(conn.notifies.pop(0).payload)
            ids.append("%d %d %d" % (p["first_alert_id"], p["last_alert_id"], p["alerts"]))
        idle_after_stop = 0
    elif os.path.exists(stop_file):
        idle_after_stop += 1
        if idle_after_stop >= 4:  # 2 s of silence after the stop signal
            break
with open(out_file, "w") as f:
    f.write("\n".join(map(str, ids)) + ("\n" if ids else ""))
