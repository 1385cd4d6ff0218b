"""The bundled demo's TCGplayer products move to the tcgcsv card id scheme.

A card is one (TCGplayer product, printing): ``tcgplayer-<productId>-<printing>``. Each of
the 21 demo products has exactly one printing on TCGplayer (checked against tcgcsv's
archive of 2025-09-21): the single cards are Holofoil, the sealed products Normal. Their
old ids (``-card`` / ``-sealed``) are renamed in place (primary keys, prices, predictions
and the track record are untouched), and the printing is recorded. A card whose new id is
already taken (say, collected from tcgcsv before this migration) is left as it is.
"""

from django.db import migrations

# productId: printing, from the 2025-09-21 archive.
DEMO_PRINTINGS = {
    241673: "Holofoil",
    242811: "Normal",
    253266: "Holofoil",
    256141: "Normal",
    265519: "Normal",
    283389: "Normal",
    453470: "Normal",
    476452: "Normal",
    501257: "Normal",
    509980: "Holofoil",
    517045: "Holofoil",
    523880: "Holofoil",
    536225: "Normal",
    542929: "Holofoil",
    552999: "Normal",
    557354: "Normal",
    565606: "Normal",
    590027: "Holofoil",
    593355: "Normal",
    610516: "Holofoil",
    610931: "Normal",
}
OLD_SUFFIX = {"Holofoil": "card", "Normal": "sealed"}


def forward(apps, schema_editor):
    Card = apps.get_model("prices", "Card")
    for product, printing in DEMO_PRINTINGS.items():
        old = f"tcgplayer-{product}-{OLD_SUFFIX[printing]}"
        new = f"tcgplayer-{product}-{printing.lower()}"
        if Card.objects.filter(card_id=new).exists():
            continue
        Card.objects.filter(card_id=old).update(card_id=new, printing=printing)


def backward(apps, schema_editor):
    Card = apps.get_model("prices", "Card")
    for product, printing in DEMO_PRINTINGS.items():
        new = f"tcgplayer-{product}-{printing.lower()}"
        old = f"tcgplayer-{product}-{OLD_SUFFIX[printing]}"
        if not Card.objects.filter(card_id=old).exists():
            Card.objects.filter(card_id=new).update(card_id=old, printing="")


class Migration(migrations.Migration):
    dependencies = [("prices", "0004_card_printing")]

    operations = [migrations.RunPython(forward, backward)]
