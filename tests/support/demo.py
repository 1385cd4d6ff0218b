"""The demo data set under config/demo, and the six-product slice the pipeline tests train on."""

from __future__ import annotations

from tests.support import ROOT

DEMO_CSV = ROOT / "config" / "demo" / "tcgplayer_market_prices_dev.csv"
DEMO_CARDS = ROOT / "config" / "demo" / "cards.yaml"
SLICE = [
    "tcgplayer-241673-holofoil",
    "tcgplayer-256141-normal",
    "tcgplayer-517045-holofoil",
    "tcgplayer-536225-normal",
    "tcgplayer-590027-holofoil",
    "tcgplayer-610931-normal",
]
