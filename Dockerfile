# One image for the three workers; compose.yaml picks the module to run.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY schemas ./schemas
COPY shared ./shared
COPY ingest_gateway ./ingest_gateway
COPY detector_worker ./detector_worker
COPY baseline_worker ./baseline_worker
COPY ops/migrations ./ops/migrations
RUN pip install -c constraints.txt . && useradd --system --uid 10001 jalytics
USER jalytics
# Overridden per service in compose.yaml.
CMD ["python", "-m", "ingest_gateway"]
