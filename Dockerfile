# One image for the hub and the spoke: `fleetscale hub` or `fleetscale spoke`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub hub
COPY spoke spoke
COPY shared shared
RUN pip install --no-cache-dir . && useradd --uid 10001 fleetscale
USER 10001
ENTRYPOINT ["fleetscale"]
