# The twin's image for docker-compose.yml: the `twin` console script and its dependencies.
# Kafka runs in its own container (apache/kafka), so this image needs no JDK.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY twin ./twin
COPY sim ./sim
COPY streams ./streams
RUN pip install .

RUN useradd --create-home --uid 10001 twin && mkdir -p /data && chown twin /data
USER twin
ENV TWIN_DATA_DIR=/data
VOLUME ["/data"]

CMD ["twin", "--help"]
