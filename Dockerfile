# Postdesk: one image for every role (`postdesk serve --only smtp|imap|web|worker`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

RUN useradd --create-home --uid 10001 postdesk
COPY pyproject.toml README.md alembic.ini config.toml ./
COPY core ./core
COPY ingest ./ingest
COPY portal ./portal
COPY postdesk ./postdesk
COPY templates ./templates
COPY alembic ./alembic
RUN pip install -e . && mkdir -p /app/var && chown -R postdesk /app/var

USER postdesk
# Listen on all interfaces inside the container; publish the ports in compose.
ENV POSTDESK_SMTP__HOST=0.0.0.0 POSTDESK_WEB__HOST=0.0.0.0
EXPOSE 2525 8000
VOLUME ["/app/var"]
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# serve upgrades the database to the newest migration before it starts listening.
CMD ["postdesk", "serve"]
