# syntax=docker/dockerfile:1
# The service image: `docker build -t hume-expression-service .`, then
# `docker run IMAGE serve|worker|migrate` (see README, "Deploy").

# --- build: resolve nothing, install exactly requirements.lock (pinned, hashed) into a venv ---
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
# --require-hashes: a tampered or re-uploaded wheel fails the build instead of landing in the image.
# --only-binary: every dependency ships wheels, so no compiler is needed here or later.
RUN /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r /tmp/requirements.lock

# --- runtime: the venv and the source, no pip cache, no build tools, no dev extras ---
FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=8000
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /srv --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
# `migrate` finds alembic.ini next to app/, so the source tree is copied as it is laid out in the repo.
COPY --chown=root:root alembic.ini pyproject.toml ./
COPY --chown=root:root migrations ./migrations
COPY --chown=root:root app ./app
USER app:app
EXPOSE 8000
# slim images have no curl; the interpreter is already there. `worker` containers override this in compose.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=2)"]
# Exec form: python is PID 1 and receives SIGTERM itself; `serve` drains requests (uvicorn's graceful
# shutdown) and `worker` finishes or releases its tasks before exiting.
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "app"]
CMD ["serve"]
