from __future__ import annotations

from rest_framework import serializers

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
    deviation_pct = serializers.SerializerMethodField()
    signal = serializers.ChoiceField(
        choices=Prediction.Signal.choices, read_only=True, allow_null=True
    )

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
            "deviation_pct",
            "signal",
        ]

    def get_deviation_pct(self, obj: Card) -> float | None:
        value = getattr(obj, "deviation", None)
        return None if value is None else round(value * 100, 2)


class PricePointSerializer(serializers.ModelSerializer):
    class Meta:
        model = PricePoint
        fields = ["date", "market_price", "currency", "source"]


class FairPriceSerializer(serializers.Serializer):
    card_id = serializers.CharField()
    date = serializers.DateField()
    market_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    fair_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    deviation_pct = serializers.FloatField(help_text="(market - fair) / fair, in percent")
    signal = serializers.ChoiceField(choices=Prediction.Signal.choices)
    model_version = serializers.CharField()


class BatchItemSerializer(serializers.Serializer):
    card_id = serializers.CharField()
    found = serializers.BooleanField()
    result = FairPriceSerializer(allow_null=True)
    detail = serializers.CharField(allow_null=True)


class DateQuerySerializer(serializers.Serializer):
    date = serializers.DateField(required=False)


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
