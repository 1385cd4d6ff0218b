from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = "Training pipeline"

    def ready(self) -> None:
        # The model side listens to the prices side; prices never import pipelines.
        from pipelines.receivers import score_ingested_prices
        from prices.signals import prices_ingested

        prices_ingested.connect(score_ingested_prices, dispatch_uid="pipelines.score_ingested")

        from pipelines.drift import DriftCollector
        from pipelines.observability import TrainingCollector
        from pokewatch_site.metrics import register_collector

        register_collector(TrainingCollector())
        register_collector(DriftCollector())
