"""The admin's cache page: statistics need a view permission, clearing its own one."""

from __future__ import annotations

from prices import caching

URL = "/admin/cache-stats/"


def test_if_staff_has_no_permission_then_stats_and_clear_are_refused(permitted_client, db) -> None:
    client = permitted_client()
    generation = caching.current_generation()
    assert client.get(URL).status_code == 403
    assert client.post(URL).status_code == 403
    assert caching.current_generation() == generation


def test_if_staff_may_only_view_then_stats_show_without_a_clear_button(
    permitted_client, db
) -> None:
    client = permitted_client("prices.view_cachegeneration")
    page = client.get(URL)
    assert page.status_code == 200
    assert "Misses" in page.text
    assert "Clear the prediction cache" not in page.text
    generation = caching.current_generation()
    assert client.post(URL).status_code == 403
    assert caching.current_generation() == generation


def test_if_staff_may_clear_then_the_cache_is_cleared(
    permitted_client, db, django_capture_on_commit_callbacks
) -> None:
    client = permitted_client("prices.clear_prediction_cache")
    page = client.get(URL)
    assert page.status_code == 200 and "Clear the prediction cache" in page.text
    generation = caching.current_generation()
    with django_capture_on_commit_callbacks(execute=True):  # the shared cache learns after commit
        response = client.post(URL)
    assert response.status_code == 302
    assert caching.current_generation() == generation + 1
