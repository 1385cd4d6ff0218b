"""Training runs' admin buttons need the change permission on training runs."""

from __future__ import annotations

from django.urls import reverse

from pipelines.models import TrainingRun


def test_if_staff_may_only_view_runs_then_the_buttons_start_nothing(permitted_client) -> None:
    client = permitted_client("pipelines.view_trainingrun")
    assert client.get(reverse("admin:pipelines_trainingrun_changelist")).status_code == 200
    run = client.post(reverse("admin:pipelines_trainingrun_run"), follow=True)
    again = client.post(reverse("admin:pipelines_trainingrun_collect"), follow=True)
    assert "You may not start training runs." in run.text
    assert "You may not start price collection." in again.text
    assert not TrainingRun.objects.exists()


def test_if_staff_has_no_permission_then_run_and_version_pages_answer_403(
    permitted_client,
) -> None:
    client = permitted_client()
    for name in ("pipelines_trainingrun_changelist", "pipelines_modelversion_changelist"):
        assert client.get(reverse(f"admin:{name}")).status_code == 403, name
