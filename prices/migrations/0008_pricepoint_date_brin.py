"""A BRIN index on PricePoint.date, on PostgreSQL only (see the model's Meta).

Prices arrive a day at a time, so the table's physical order follows the date and a block
range index summarises it in a few kB. Measured at 42,000 cards x 730 days (30.7 M rows,
``benchmarks/prices_table.py``, docs/benchmarks.md): "every price of the last two days"
went from 778 ms (a sequential scan) to 43 ms; one more day of every card ingests in
1.43-1.54 s either way; a B-tree on date would have cost bulk ingestion about half its
throughput. SQLite (the laptop default) has no BRIN and does not need it at demo size.
"""

from django.db import migrations

INDEX = "pricepoint_date_brin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON prices_pricepoint USING brin (date)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("prices", "0007_collection_runs_and_ingested_days")]

    operations = [migrations.RunPython(create, drop)]
