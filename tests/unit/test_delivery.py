import polars as pl

from ingestlab.analysis.delivery import COUNT_COLUMNS, counts_by_group, delivery_table


def _requests(rows):
    return pl.DataFrame(rows, schema={"service": pl.String, "request_id": pl.String, "status": pl.Int16},
                        orient="row")


def _records(ids):
    return pl.DataFrame({"request_id": ids}, schema={"request_id": pl.String})


def test_counts_lost_duplicated_unexpected_and_rejected():
    requests = _requests([
        ("node", "a", 202),  # delivered once
        ("node", "b", 202),  # delivered twice -> 1 duplicate
        ("node", "c", 202),  # lost
        ("node", "d", 400),  # rejected, nothing in Kafka
        ("node", "e", 500),  # failed, but a record landed -> unexpected
        ("node", "f", 0),    # no answer at all
        ("rust", "g", 202),
    ])
    records = _records(["a", "b", "b", "e", "g", "zz-other-run"])
    counts = counts_by_group(delivery_table(requests, records))
    assert counts["node"] == {"sent": 6, "accepted": 3, "rejected": 1, "failed": 2, "delivered": 2,
                              "lost": 1, "duplicated": 1, "unexpected": 1}
    assert counts["rust"] == {"sent": 1, "accepted": 1, "rejected": 0, "failed": 0, "delivered": 1,
                              "lost": 0, "duplicated": 0, "unexpected": 0}


def test_empty_topic_means_every_accepted_request_is_lost():
    table = delivery_table(_requests([("rust", "a", 202), ("rust", "b", 202)]), _records([]))
    row = table.row(0, named=True)
    assert (row["accepted"], row["delivered"], row["lost"]) == (2, 0, 2)
    assert set(COUNT_COLUMNS) <= set(table.columns)
