"""Screenshot a card's admin page (its chart included) in headless Chromium.

    .venv/bin/pip install -e '.[screenshot]'      # Playwright, driving the system Chromium
    sudo apt-get install chromium                 # Debian's package: /usr/bin/chromium
    .venv/bin/python scripts/screenshot_card_chart.py tcgplayer-517045-holofoil

It uses the database of the current settings (e.g. the `make run` demo in var/), starts
`manage.py runserver` on a free local port, logs in as a temporary staff user (a session
made here: no password exists or travels), opens /admin/prices/card/<id>/change/, waits for
the chart image, and saves a full-page PNG (default var/screenshots/<card_id>.png). The
temporary user and its session are deleted afterwards. Nothing is downloaded: Playwright
is told to launch the Chromium that is already installed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own local server)
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server did not answer {url} within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("card_id")
    parser.add_argument("--out", type=Path, help="PNG path (default var/screenshots/<id>.png)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pokewatch_site.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore

    from prices.models import Card

    card = Card.objects.filter(card_id=args.card_id).first()
    if card is None:
        raise SystemExit(f"no card {args.card_id!r} in this database")
    out = args.out or Path(settings.VAR_DIR) / "screenshots" / f"{card.card_id}.png"
    out.parent.mkdir(parents=True, exist_ok=True)

    user = get_user_model().objects.create(
        username=f"screenshot-{os.getpid()}", is_staff=True, is_superuser=True
    )
    user.set_unusable_password()
    user.save()
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    session_key = str(session.session_key)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(  # noqa: S603 (our own manage.py, fixed arguments)
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(f"{base}/api/v1/health/")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
            context = browser.new_context(viewport={"width": args.width, "height": 900})
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session_key, "url": base}]
            )
            page = context.new_page()
            page.goto(f"{base}/admin/prices/card/{card.pk}/change/")
            chart = page.locator("img[src$='chart.svg']")
            chart.wait_for(state="visible", timeout=30_000)
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=chart.element_handle()
            )
            chart.scroll_into_view_if_needed()
            page.screenshot(path=str(out), full_page=True)
            chart.screenshot(path=str(out.with_name(out.stem + "-chart.png")))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        session.delete()
        user.delete()
    print(f"saved {out} and {out.with_name(out.stem + '-chart.png')}")


if __name__ == "__main__":
    main()
