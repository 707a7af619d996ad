# syntax=docker/dockerfile:1
# runner as a container: `runner run` is the entrypoint (PID 1, so it also reaps orphans and
# forwards signals, see runner/init.py), the config is read from /etc/runner (mount a file or
# a Kubernetes ConfigMap there) and SQLite keeps its file in /var/lib/runner (mount a volume).
#   docker build -t runner .
#   docker run -v "$PWD/scheduler.yaml:/etc/runner/scheduler.yaml:ro" -v runner-data:/var/lib/runner runner

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runner ./runner
# Wheels of runner and all its dependencies (the API and PostgreSQL extras included), so the
# final image needs no compiler and no network.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[api,postgres]'

FROM python:${PYTHON_VERSION}-slim
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels 'runner[api,postgres]' \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/runner --shell /usr/sbin/nologin runner \
 && mkdir -p /etc/runner /var/lib/runner \
 && chown runner:runner /var/lib/runner
COPY --chmod=0644 scheduler.yaml /etc/runner/scheduler.yaml

ENV RUNNER_CONFIG=/etc/runner \
    PYTHONUNBUFFERED=1
# Relative paths in the config land in the data volume: the default database sqlite:///runner.db
# is /var/lib/runner/runner.db. A config (or RUNNER_DATABASE_URL) naming PostgreSQL needs none.
WORKDIR /var/lib/runner
VOLUME ["/var/lib/runner"]
USER 10001:10001
EXPOSE 8080
# Asks /healthz when settings.api.listen is set; healthy without an API (nothing to ask).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["runner", "healthcheck"]
STOPSIGNAL SIGTERM
# Logs are JSON lines on stderr when it is not a terminal; arguments go to `runner run`.
ENTRYPOINT ["runner", "run"]
