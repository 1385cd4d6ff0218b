# syntax=docker/dockerfile:1
#
# PokeWatch image: one image for every process (web, worker, beat, the one-shot migrate).
#   web     gunicorn pokewatch_site.wsgi -c config/gunicorn.conf.py   (the default CMD)
#   worker  celery -A pokewatch_site worker --loglevel info
#   beat    celery -A pokewatch_site beat --loglevel info --schedule /var/lib/pokewatch/celerybeat-schedule
# See docker-compose.yml and .env.example.
#
# Static files (the admin's CSS/JS, Swagger UI) are collected into
# /var/lib/pokewatch/static at build time. Gunicorn does not serve them: a reverse proxy
# serves /static/ from there (docker-compose.yml shares it as the `static` volume).

############################ builder: compilers, pip, the virtual environment ############
FROM python:3.11-slim AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# Build tools for any dependency without a wheel for this platform; they stay in this stage.
# Debian's versions are not pinned: the slim base tag already fixes the release, and a pin
# would break the build as soon as the archive drops that exact version.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv \
 && pip install pip==26.3

WORKDIR /src
# Dependencies alone first, every one pinned with its hashes by requirements.lock (exported
# from uv.lock; docs/ci_cd.md says how to regenerate both): this layer is rebuilt only when
# the lock changes, not on every code change. --no-deps: the lock is the whole set.
COPY requirements.lock ./
RUN pip install --no-deps --require-hashes -r requirements.lock \
 && pip check

# The project itself runs from /app (settings find config/ and manage.py next to the
# packages through BASE_DIR), so it is not installed into site-packages: a second copy
# there would only shadow or duplicate /app.

############################ runtime: python:3.11-slim, the venv, the app ###############
FROM python:3.11-slim AS runtime

# Production settings by default (DEBUG=0: a real SECRET_KEY and ALLOWED_HOSTS are then
# required, HTTPS only, no debug pages); `-e DEBUG=1` only to debug a container locally.
# No extra system libraries: every binary dependency ships its shared libraries in its
# wheel (psycopg_binary.libs, scikit_learn.libs with libgomp, numpy.libs, scipy.libs).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=pokewatch_site.settings \
    DEBUG=0 \
    POKEWATCH_VAR_DIR=/var/lib/pokewatch \
    PORT=8000

RUN groupadd --system --gid 10001 pokewatch \
 && useradd --system --uid 10001 --gid pokewatch --home-dir /var/lib/pokewatch \
        --no-create-home --shell /usr/sbin/nologin pokewatch \
 && install -d -o pokewatch -g pokewatch -m 0750 /var/lib/pokewatch

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The code belongs to root and is read-only for the process; only POKEWATCH_VAR_DIR is
# writable (SQLite fallback, ZenML store, beat schedule, static files).
COPY . /app

# The pokewatch user by number, so that a runtime that refuses root (Kubernetes' runAsNonRoot)
# can verify it is not.
USER 10001:10001

# DEBUG=0 makes settings demand a SECRET_KEY of 40+ characters and ALLOWED_HOSTS: these
# dummy values exist only for this one command and are not kept in the image.
RUN DEBUG=0 \
    SECRET_KEY=build-only-dummy-secret-key-for-collectstatic-never-used-at-runtime \
    ALLOWED_HOSTS=build.invalid \
    python manage.py collectstatic --noinput

EXPOSE 8000

# No curl in slim images: python's urllib. The Host header is the first ALLOWED_HOSTS
# entry, so the check passes Django's host validation whatever the site's name is.
# Worker, beat and migrate containers override this check (see docker-compose.yml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; h = (os.environ.get('ALLOWED_HOSTS') or 'localhost').split(',')[0].strip().lstrip('.'); h = 'localhost' if h in ('', '*') else h; u.urlopen(u.Request('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/api/v1/health/', headers={'Host': h}), timeout=4)"]

CMD ["gunicorn", "pokewatch_site.wsgi", "-c", "config/gunicorn.conf.py"]
