# pue-monitor image. Default command: the demo (simulated province + monitor); for real
# devices run `pue-monitor run -c /etc/pue-monitor/config.yaml --host 0.0.0.0`.
# docker-compose.yml runs this image twice: `pue-monitor run` and `pue-monitor simulate`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY config ./config
COPY pue ./pue
COPY store ./store
COPY figures ./figures
COPY exchange ./exchange
COPY collectors ./collectors
COPY web ./web
COPY central ./central
COPY simulator ./simulator
COPY pue_monitor ./pue_monitor
# the dependencies at the versions of requirements.lock (`make lock`)
RUN pip install --no-cache-dir -c requirements.lock . \
    && useradd --system --home /data pue && mkdir -p /data && chown pue /data
USER pue
EXPOSE 8080
VOLUME /data
CMD ["pue-monitor", "demo", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]
