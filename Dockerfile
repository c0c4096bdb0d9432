# convscope: the web app and its NumPy engine.
#   docker build -t convscope .
#   docker run -p 8000:8000 -e CONVSCOPE_WORKERS=2 convscope
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CONVSCOPE_HOST=0.0.0.0 \
    CONVSCOPE_PORT=8000

WORKDIR /srv/convscope

# Dependencies first, at the exact versions (and hashes) of requirements.lock, so this layer is cached until
# the lock changes.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

# Then the code. The templates and static files sit beside the packages, so install in place.
COPY pyproject.toml README.md ./
COPY app ./app
COPY engine ./engine
COPY static ./static
COPY templates ./templates
RUN pip install --no-deps --no-build-isolation -e . \
    && useradd --system --uid 10001 --home-dir /srv/convscope convscope \
    && mkdir -p /srv/convscope/var && chown convscope /srv/convscope/var
USER convscope
# trained models, their history and the training queue (SQLite); mount a volume here to keep them
ENV CONVSCOPE_DATA_DIR=/srv/convscope/var
VOLUME ["/srv/convscope/var"]

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request, os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"CONVSCOPE_PORT\"]}/healthz', timeout=2)"

# Web workers: CONVSCOPE_WORKERS (default: one per core the container sees), plus one training worker
# (CONVSCOPE_EMBEDDED_WORKER=false for web-only replicas; `convscope worker` runs one on its own).
CMD ["convscope", "serve"]
