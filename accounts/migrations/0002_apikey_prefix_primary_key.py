"""An API key is named by its prefix: the primary key was "<prefix>.<hash>", so admin URLs
(and the access logs that record them) carried the key's hash. The admin's log entries of
keys are renamed the same way, so that their links keep working and carry no hash."""

from django.db import migrations, models


def _key_entries(apps):
    ContentType = apps.get_model("contenttypes", "ContentType")
    LogEntry = apps.get_model("admin", "LogEntry")
    content_type = ContentType.objects.filter(app_label="accounts", model="apikey").first()
    if content_type is None:
        return LogEntry.objects.none()
    return LogEntry.objects.filter(content_type=content_type)


def name_log_entries_by_prefix(apps, schema_editor):
    for entry in _key_entries(apps).filter(object_id__contains="."):
        entry.object_id = entry.object_id.partition(".")[0]
        entry.save(update_fields=["object_id"])


def name_log_entries_by_id(apps, schema_editor):
    APIKey = apps.get_model("accounts", "APIKey")
    ids = dict(APIKey.objects.values_list("prefix", "id"))
    for entry in _key_entries(apps).exclude(object_id__contains="."):
        if entry.object_id in ids:
            entry.object_id = ids[entry.object_id]
            entry.save(update_fields=["object_id"])


def _fields(model, *, prefix_is_key: bool):
    """The id and prefix columns, with the primary key on the prefix or on the id."""
    id_field = models.CharField(
        max_length=150, unique=True, primary_key=not prefix_is_key, editable=False
    )
    prefix = models.CharField(
        max_length=8, unique=not prefix_is_key, primary_key=prefix_is_key, editable=False
    )
    for name, field in (("id", id_field), ("prefix", prefix)):
        field.set_attributes_from_name(name)
        field.model = model
    return id_field, prefix


def _move_primary_key(schema_editor, model, *, to_prefix: bool) -> None:
    (old_id, old_prefix), (new_id, new_prefix) = (
        _fields(model, prefix_is_key=not to_prefix),
        _fields(model, prefix_is_key=to_prefix),
    )
    if schema_editor.connection.vendor == "sqlite":
        # SQLite rebuilds the table once, from the model with the primary key moved; two
        # steps would pass through a table without one (Django then adds its own "id").
        schema_editor.alter_field(model, old_prefix, new_prefix)
        return
    # Elsewhere: the key that stops being one goes first (its constraint is dropped then).
    steps = [(old_id, new_id), (old_prefix, new_prefix)]
    for old, new in steps if to_prefix else reversed(steps):
        schema_editor.alter_field(model, old, new)


def make_prefix_the_primary_key(apps, schema_editor):
    _move_primary_key(schema_editor, apps.get_model("accounts", "APIKey"), to_prefix=True)


def make_id_the_primary_key(apps, schema_editor):
    _move_primary_key(schema_editor, apps.get_model("accounts", "APIKey"), to_prefix=False)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="apikey",
                    name="prefix",
                    field=models.CharField(
                        editable=False, max_length=8, primary_key=True, serialize=False
                    ),
                ),
                migrations.AlterField(
                    model_name="apikey",
                    name="id",
                    field=models.CharField(editable=False, max_length=150, unique=True),
                ),
            ],
            database_operations=[
                migrations.RunPython(make_prefix_the_primary_key, make_id_the_primary_key)
            ],
        ),
        migrations.RunPython(name_log_entries_by_prefix, name_log_entries_by_id),
    ]
