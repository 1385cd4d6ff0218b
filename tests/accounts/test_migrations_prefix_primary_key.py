"""Migration accounts/0002: a key's primary key becomes its prefix, admin log entries follow."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.support.migrations import migrate

# The admin's log entries, users and content types, as they are now.
OTHERS = [
    ("admin", "0003_logentry_add_action_flag_choices"),
    ("auth", "0012_alter_user_first_name_max_length"),
    ("contenttypes", "0002_remove_content_type_name"),
]
BEFORE = [("accounts", "0001_initial"), *OTHERS]
AFTER = [("accounts", "0002_apikey_prefix_primary_key"), *OTHERS]
HASHED = "sha512$$" + "ab" * 64


@pytest.mark.django_db(transaction=True)
def test_keys_and_their_log_entries_are_named_by_prefix_and_back() -> None:
    apps = migrate(BEFORE)
    APIKey = apps.get_model("accounts", "APIKey")
    APIKey.objects.create(id=f"Pf0Xy2Ab.{HASHED}", prefix="Pf0Xy2Ab", hashed_key=HASHED, name="k")
    user = apps.get_model("auth", "User").objects.create(username="boss", is_staff=True)
    content_type, _ = apps.get_model("contenttypes", "ContentType").objects.get_or_create(
        app_label="accounts", model="apikey"
    )
    entry = apps.get_model("admin", "LogEntry").objects.create(
        user=user,
        content_type=content_type,
        object_id=f"Pf0Xy2Ab.{HASHED}",
        object_repr="k",
        action_flag=1,
        action_time=timezone.now(),
    )
    try:
        apps = migrate(AFTER)
        key = apps.get_model("accounts", "APIKey").objects.get(pk="Pf0Xy2Ab")
        assert (key.id, key.hashed_key, key.name) == (f"Pf0Xy2Ab.{HASHED}", HASHED, "k")
        LogEntry = apps.get_model("admin", "LogEntry")
        assert LogEntry.objects.get(pk=entry.pk).object_id == "Pf0Xy2Ab"

        apps = migrate(BEFORE)  # and back
        assert apps.get_model("accounts", "APIKey").objects.get().pk == f"Pf0Xy2Ab.{HASHED}"
        LogEntry = apps.get_model("admin", "LogEntry")
        assert LogEntry.objects.get(pk=entry.pk).object_id == f"Pf0Xy2Ab.{HASHED}"
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest schema
