from __future__ import annotations

import pytest

from pipelines import publishing
from pipelines.models import ModelVersion
from pipelines.publishing import publish
from prices import caching
from prices import predictions as prediction_store
from prices.models import Prediction
from tests.support.pipelines import prediction_frame


@pytest.fixture
def cards(make_card) -> list[str]:
    return [make_card(card_id=f"c{i}").card_id for i in range(3)]


@pytest.fixture
def champion(cards: list[str], make_version) -> ModelVersion:
    old = make_version("last_price")
    publish(old, prediction_frame(cards, 5))
    return old


def test_publish_writes_flips_and_prunes(
    cards, champion, django_capture_on_commit_callbacks, make_version
) -> None:
    generation = caching.current_generation()
    new = make_version("model")
    with django_capture_on_commit_callbacks(execute=True):  # as when the publish commits
        result = publish(new, prediction_frame(cards, 7))

    champion.refresh_from_db()
    new.refresh_from_db()
    assert (champion.is_champion, new.is_champion) == (False, True)
    assert result.written == 21
    assert result.pruned == 15
    assert set(Prediction.objects.values_list("model_version", flat=True)) == {new.pk}
    assert caching.current_generation() == generation + 1


def test_rows_without_a_fair_price_are_not_published(cards, make_version) -> None:
    frame = prediction_frame(cards, 2)
    frame.loc[0, "fair_price"] = float("nan")
    assert publish(make_version(), frame).written == 5


def _assert_old_champion_intact(champion: ModelVersion) -> None:
    assert list(ModelVersion.objects.filter(is_champion=True)) == [champion]
    assert Prediction.objects.filter(model_version=champion).count() == 15
    assert Prediction.objects.exclude(model_version=champion).count() == 0


@pytest.mark.parametrize("failing_step", ["write", "flip", "cache"])
def test_if_any_publish_step_fails_then_previous_champion_stays(
    cards, champion, monkeypatch: pytest.MonkeyPatch, failing_step: str, make_version
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"{failing_step} failed")

    if failing_step == "write":  # some rows land, then the write fails
        copy, bulk_create = prediction_store.copy_lines, Prediction.objects.bulk_create

        def copy_half(cursor, table, columns, lines, **kwargs):
            copy(cursor, table, columns, list(lines)[:5], **kwargs)
            raise RuntimeError("write failed")

        def bulk_create_half(batch, **kwargs):
            bulk_create(list(batch)[:5], **kwargs)
            raise RuntimeError("write failed")

        monkeypatch.setattr(prediction_store, "copy_lines", copy_half)
        monkeypatch.setattr(Prediction.objects, "bulk_create", bulk_create_half)
    elif failing_step == "flip":
        monkeypatch.setattr(ModelVersion, "save", boom)
    else:
        monkeypatch.setattr(publishing.caching, "bump_generation", boom)

    with pytest.raises(RuntimeError, match="failed"):
        publish(make_version("model"), prediction_frame(cards, 7))
    _assert_old_champion_intact(champion)


def test_if_pruning_fails_then_the_new_champion_still_serves(
    cards, champion, monkeypatch: pytest.MonkeyPatch, make_version
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("prune failed")

    monkeypatch.setattr(Prediction.objects, "exclude", boom)
    new = make_version("model")
    result = publish(new, prediction_frame(cards, 7))
    assert result.pruned == 0
    assert ModelVersion.objects.get(is_champion=True) == new


def test_unknown_cards_in_predictions_are_refused(cards, champion, make_version) -> None:
    with pytest.raises(ValueError, match="unknown cards"):
        publish(make_version(), prediction_frame(["ghost"], 1))
    _assert_old_champion_intact(champion)


def test_there_is_never_more_than_one_champion(db, make_version) -> None:
    from django.db import IntegrityError, transaction

    make_version(is_champion=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_version(is_champion=True)
