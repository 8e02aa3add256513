# syntax=docker/dockerfile:1
#
# The image of the API, the worker, beat and the one-shot migrations
# (docker-compose.yml). Build tools stay in the builder stage; the final stage
# has Python, the virtual environment and our code, and runs as a plain user.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies first, read from pyproject.toml alone: a code change keeps this layer.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY quote_service ./quote_service
COPY worker ./worker
# Editable, so the code stays at /app beside migrations/ and instance/, which
# the app finds next to its package.
RUN pip install --no-deps -e .

FROM ${PYTHON_IMAGE}
# Set by the build (docs/OPERATIONS.md, "Upgrading"): which commit, built when.
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
# OCI annotations; the version is pyproject.toml's (a test keeps the two equal).
LABEL org.opencontainers.image.title="quote-service" \
      org.opencontainers.image.description="Medical-tourism quote intake: API, Celery worker and beat in one image." \
      org.opencontainers.image.version="0.2.0" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.documentation="docs/OPERATIONS.md"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY quote_service ./quote_service
COPY worker ./worker
COPY migrations ./migrations
# The gettext catalogs are compiled here from their .po sources (never committed).
RUN pybabel compile --statistics -d quote_service/translations
# The code stays root's and read-only to the app; instance/ is its one writable
# folder (celery beat's schedule).
RUN mkdir instance && chown app:app instance
# Numeric, so an orchestrator can check that the user is not root.
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "--bind=0.0.0.0:8000", "quote_service:create_app()"]
