"""Reading a Prometheus page in tests: every sample by name and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TOKEN = "metrics-test-token"


def parse(page: str | bytes) -> Samples:
    text = page.decode() if isinstance(page, bytes) else page
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name{labels}``; 0 if absent (a counter nobody incremented yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def scrape(client, **labels: str) -> Samples:  # type: ignore[no-untyped-def]
    """``/metrics`` through Django's test client, with the token of the ``metrics_token``
    fixture."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    return parse(response.content)
