from __future__ import annotations

from datetime import date
from typing import Any

from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.request import Request

from prices.models import Card, Prediction, PricePoint

MAX_BATCH = 100


class CardSerializer(serializers.ModelSerializer):
    latest_market_price = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, allow_null=True
    )
    latest_price_date = serializers.DateField(read_only=True, allow_null=True)
    prediction_date = serializers.DateField(read_only=True, allow_null=True)
    fair_price = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, allow_null=True
    )
    fair_low = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, allow_null=True
    )
    fair_high = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, allow_null=True
    )
    deviation_pct = serializers.SerializerMethodField()
    signal = serializers.ChoiceField(
        choices=Prediction.Signal.choices, read_only=True, allow_null=True
    )
    signal_rule = serializers.SerializerMethodField()
    horizon_days = serializers.SerializerMethodField()

    class Meta:
        model = Card
        fields = [
            "card_id",
            "name",
            "set_code",
            "set_name",
            "number",
            "rarity",
            "category",
            "tags",
            "language",
            "latest_market_price",
            "latest_price_date",
            "prediction_date",
            "fair_price",
            "fair_low",
            "fair_high",
            "deviation_pct",
            "signal",
            "signal_rule",
            "horizon_days",
        ]

    def get_deviation_pct(self, obj: Card) -> float | None:
        value = getattr(obj, "deviation", None)
        return None if value is None else round(value * 100, 2)

    def _champion_field(self, obj: Card, name: str) -> Any:
        """The champion's, for a card that has a prediction (the view passes the champion)."""
        champion = self.context.get("champion")
        if champion is None or getattr(obj, "prediction_date", None) is None:
            return None
        return getattr(champion, name)

    def get_signal_rule(self, obj: Card) -> str | None:
        return self._champion_field(obj, "signal_rule")  # type: ignore[no-any-return]

    def get_horizon_days(self, obj: Card) -> int | None:
        return self._champion_field(obj, "horizon")  # type: ignore[no-any-return]


class PricePointSerializer(serializers.ModelSerializer):
    class Meta:
        model = PricePoint
        fields = ["date", "market_price", "currency", "source"]


class FairPriceSerializer(serializers.Serializer):
    card_id = serializers.CharField()
    date = serializers.DateField()
    market_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    fair_price = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="estimated median price of the next H days"
    )
    fair_low = serializers.DecimalField(
        max_digits=12, decimal_places=2, allow_null=True, help_text="its 10th percentile"
    )
    fair_high = serializers.DecimalField(
        max_digits=12, decimal_places=2, allow_null=True, help_text="its 90th percentile"
    )
    deviation_pct = serializers.FloatField(help_text="(market - fair) / fair, in percent")
    signal = serializers.ChoiceField(choices=Prediction.Signal.choices)
    signal_rule = serializers.ChoiceField(
        choices=["band", "deviation"], help_text="how the signal was derived (docs/model.md)"
    )
    horizon_days = serializers.IntegerField(help_text="H: the horizon of the fair value")
    model_version = serializers.CharField()


class BatchItemSerializer(serializers.Serializer):
    card_id = serializers.CharField()
    found = serializers.BooleanField()
    result = FairPriceSerializer(allow_null=True)
    detail = serializers.CharField(allow_null=True)


class DateQuerySerializer(serializers.Serializer):
    date = serializers.DateField(required=False)


_DATE_PARAM = DateQuerySerializer().fields["date"]


def date_param(request: Request) -> date | None:
    """The ``date`` query parameter as :class:`DateQuerySerializer` reads it (``None`` if
    absent; a malformed one raises its ``ValidationError``, naming ``date``).

    Through the serializer's own bound field, not a new serializer: building one copies
    its fields, which was the largest cost of a cached fair-price read.
    """
    if "date" not in request.query_params:
        return None
    try:
        value = _DATE_PARAM.get_value(request.query_params)
        return _DATE_PARAM.run_validation(value)  # type: ignore[no-any-return]
    except SkipField:  # "date=": no date, as the serializer reads it
        return None
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({"date": exc.detail}) from None


class RangeQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("start") and attrs.get("end") and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"start": "start must not be after end."})
        return attrs


class SignalQuerySerializer(DateQuerySerializer):
    signal = serializers.ChoiceField(choices=Prediction.Signal.choices, required=False)


class FairPriceRequestSerializer(serializers.Serializer):
    card_id = serializers.SlugField(max_length=100)
    date = serializers.DateField(required=False, allow_null=True)


class BatchFairPriceRequestSerializer(serializers.Serializer):
    card_ids = serializers.ListField(
        child=serializers.SlugField(max_length=100), min_length=1, max_length=MAX_BATCH
    )
    date = serializers.DateField(required=False, allow_null=True)


class TrackRecordSideSerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="graded signals")
    right = serializers.IntegerField(help_text="realised median beyond the threshold")
    precision = serializers.FloatField(allow_null=True, help_text="right / n")
    hit_rate = serializers.FloatField(
        allow_null=True, help_text="share whose realised median moved the signalled way"
    )
    mean_return = serializers.FloatField(
        allow_null=True, help_text="mean of realised median / market - 1"
    )


class TrackRecordBaseSerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="graded card-days, signalled or not")
    buy_rate = serializers.FloatField(allow_null=True)
    sell_rate = serializers.FloatField(allow_null=True)
    up_rate = serializers.FloatField(allow_null=True)
    mean_return = serializers.FloatField(allow_null=True)


class TrackRecordSerializer(serializers.Serializer):
    horizon_days = serializers.IntegerField()
    start = serializers.DateField()
    end = serializers.DateField()
    buy = TrackRecordSideSerializer()
    sell = TrackRecordSideSerializer()
    base = TrackRecordBaseSerializer()
    pending = serializers.IntegerField(help_text="BUY/SELL signals whose horizon has not passed")


class GradedSignalSerializer(serializers.Serializer):
    date = serializers.DateField()
    signal = serializers.ChoiceField(choices=Prediction.Signal.choices, help_text="BUY or SELL")
    signal_rule = serializers.CharField()
    market_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    fair_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    fair_low = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    fair_high = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    model_version = serializers.CharField(allow_null=True)
    graded = serializers.BooleanField()
    realised_median = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    realised_return = serializers.FloatField(allow_null=True)
    right = serializers.BooleanField(allow_null=True)
    hit = serializers.BooleanField(allow_null=True)


class CardTrackRecordSerializer(TrackRecordSerializer):
    card_id = serializers.CharField()
    signals = GradedSignalSerializer(many=True)
