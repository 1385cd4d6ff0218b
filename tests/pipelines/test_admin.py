"""Training runs' admin buttons need the change permission on training runs."""

from __future__ import annotations

from django.test import Client
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


def test_a_runs_page_shows_what_the_system_recorded_and_edits_none_of_it(
    permitted_client,
) -> None:
    run = TrainingRun.objects.create(
        status=TrainingRun.Status.SUCCEEDED, cards_scored=42, worker="host:123"
    )
    client = permitted_client("pipelines.view_trainingrun", "pipelines.change_trainingrun")
    page = client.get(reverse("admin:pipelines_trainingrun_change", args=[run.pk]))
    assert page.status_code == 200
    assert "42" in page.text and "host:123" in page.text
    for field in ("cards_scored", "worker", "retry_of", "status"):
        assert f'name="{field}"' not in page.text, field


# --- drift: the run page's table and the read-only drift pages -----------------------------


def test_drift_pages_show_each_features_psi_and_ks_to_staff(
    permitted_client, make_drift_report
) -> None:
    from pipelines.admin import _DRIFTED_STYLE
    from pipelines.drift import drift_columns

    run = TrainingRun.objects.create(status=TrainingRun.Status.REJECTED)
    report = make_drift_report("training", training_run=run)
    make_drift_report("scoring")
    client = permitted_client("pipelines.view_driftreport", "pipelines.view_trainingrun")

    listing = client.get(reverse("admin:pipelines_driftreport_changelist"))
    detail = client.get(reverse("admin:pipelines_driftreport_change", args=[report.pk]))
    run_page = client.get(reverse("admin:pipelines_trainingrun_change", args=[run.pk]))

    assert listing.status_code == detail.status_code == run_page.status_code == 200
    assert "2 drift reports" in listing.text and "2026-08-05 … 2026-08-18" in listing.text
    for page in (detail, run_page):
        for name in drift_columns():
            assert f"<td>{name}</td>" in page.text, name
        # The drifted feature's row stands out, with its PSI and KS; the others do not.
        assert f'<tr style="{_DRIFTED_STYLE}"><td>vol_h</td><td>0.3500</td><td>0.2100</td>' in (
            page.text
        )
        assert page.text.count(_DRIFTED_STYLE) == 1
        assert "1 of 24 drifted (vol_h)" in page.text
    assert reverse("admin:pipelines_driftreport_change", args=[report.pk]) in run_page.text


def test_drift_pages_are_read_only_and_refused_without_permission(
    permitted_client, make_drift_report, django_user_model
) -> None:
    report = make_drift_report("scoring")
    pages = [
        reverse("admin:pipelines_driftreport_changelist"),
        reverse("admin:pipelines_driftreport_change", args=[report.pk]),
    ]
    viewer = permitted_client("pipelines.view_driftreport")
    nobody = permitted_client()
    outsider = django_user_model.objects.create_user("customer", is_staff=False)
    not_staff = Client()
    not_staff.force_login(outsider)

    for page in pages:
        assert nobody.get(page).status_code == 403, page
        refused = not_staff.get(page)
        assert refused.status_code == 302 and "/admin/login/" in refused["Location"], page
    # Viewing is all the admin offers: no add, change or delete, even with the permissions.
    editor = permitted_client(
        "pipelines.view_driftreport",
        "pipelines.add_driftreport",
        "pipelines.change_driftreport",
        "pipelines.delete_driftreport",
    )
    change = reverse("admin:pipelines_driftreport_change", args=[report.pk])
    assert editor.post(change, {"threshold": "9"}).status_code == 403
    assert editor.get(reverse("admin:pipelines_driftreport_add")).status_code == 403
    delete = reverse("admin:pipelines_driftreport_delete", args=[report.pk])
    assert editor.post(delete, {"post": "yes"}).status_code == 403
    assert viewer.get(change).status_code == 200
    report.refresh_from_db()
    assert report.threshold == 0.2
