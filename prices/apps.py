from django.apps import AppConfig


class PricesConfig(AppConfig):
    name = "prices"
    verbose_name = "Cards and prices"

    def ready(self) -> None:
        from pokewatch_site.metrics import register_collector
        from prices.observability import PricesCollector

        register_collector(PricesCollector())
