"""Example ETL: read raw sales events, clean them, aggregate by region and day.

Orca's script contract: the output files go to $ORCA_OUTPUT_DIR; stdout is the log.
The input is a small embedded extract so the example runs anywhere (no network needed).
"""

import csv
import io
import json
import os
from collections import defaultdict
from pathlib import Path

RAW_EVENTS = """event_id,timestamp,region,product,quantity,unit_price
1,2026-11-20T09:12:00Z,eu-west,widget,3,4.50
2,2026-11-20T09:15:00Z,us-east,gadget,1,19.99
3,2026-11-20T10:01:00Z,eu-west,gadget,2,19.99
4,2026-11-20T11:30:00Z,ap-south,widget,10,4.25
5,2026-11-20T12:00:00Z,us-east,widget,,4.50
6,2026-11-21T08:45:00Z,us-east,gizmo,4,7.00
7,2026-11-21T09:05:00Z,eu-west,widget,5,4.50
8,2026-11-21T13:20:00Z,ap-south,gadget,1,21.00
9,2026-11-21T14:00:00Z,us-east,gadget,-2,19.99
10,2026-11-22T07:30:00Z,eu-west,gizmo,6,7.00
11,2026-11-22T08:10:00Z,us-east,widget,8,4.50
12,2026-11-22T16:55:00Z,ap-south,gizmo,2,7.25
"""


def extract() -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(RAW_EVENTS)))
    print(f"extract: {len(rows)} raw events")
    return rows


def transform(rows: list[dict[str, str]]) -> tuple[list[dict[str, object]], int]:
    totals: dict[tuple[str, str], dict[str, float]] = defaultdict(
        lambda: {"orders": 0, "units": 0, "revenue": 0.0}
    )
    rejected = 0
    for row in rows:
        try:
            quantity = int(row["quantity"])
            price = float(row["unit_price"])
        except ValueError:
            rejected += 1
            continue
        if quantity <= 0:
            rejected += 1
            continue
        key = (row["timestamp"][:10], row["region"])
        totals[key]["orders"] += 1
        totals[key]["units"] += quantity
        totals[key]["revenue"] += quantity * price
    table = [
        {
            "day": day,
            "region": region,
            "orders": int(v["orders"]),
            "units": int(v["units"]),
            "revenue": round(v["revenue"], 2),
        }
        for (day, region), v in sorted(totals.items())
    ]
    print(f"transform: {len(table)} day/region rows, {rejected} events rejected")
    return table, rejected


def load(table: list[dict[str, object]], rejected: int, raw_count: int) -> None:
    out = Path(os.environ["ORCA_OUTPUT_DIR"])
    with open(out / "sales_by_region.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["day", "region", "orders", "units", "revenue"])
        writer.writeheader()
        writer.writerows(table)
    summary = {
        "run_id": os.environ["ORCA_RUN_ID"],
        "events_read": raw_count,
        "events_rejected": rejected,
        "rows_written": len(table),
        "total_revenue": round(sum(float(str(r["revenue"])) for r in table), 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"load: wrote sales_by_region.csv and summary.json (revenue {summary['total_revenue']})")


if __name__ == "__main__":
    raw = extract()
    aggregated, bad = transform(raw)
    load(aggregated, bad, len(raw))
