# One image for every chaoslab service; the command picks which:
#   docker run chaoslab python -m services orders
# Each service reads its settings from the environment (services/*/settings.py).
#
# The base image by digest beside its tag: the official python:3.11-slim multi-arch index
# (linux/amd64 and linux/arm64; Python 3.11.16 on Debian trixie, pushed 2026-08-16), so a
# rebuild gets the same base until this line changes. To move it, resolve the tag's index
# digest again (`docker buildx imagetools inspect python:3.11-slim`) and change it here.
# Where no registry answers, build from a local image by tag instead:
#   docker build --build-arg PYTHON_BASE=python:3.11-slim .
ARG PYTHON_BASE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
FROM ${PYTHON_BASE} AS app

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0

WORKDIR /app

# Dependencies first, from the lock files alone (exact versions, every file checked against
# its hash; `make lock` writes them), so a code change does not reinstall them.
COPY requirements/runtime.lock requirements/load.lock requirements/
RUN pip install --require-hashes -r requirements/runtime.lock

COPY pyproject.toml ./
COPY services/ services/
COPY chaos/ chaos/
COPY loadtests/ loadtests/
RUN pip install --no-deps . && rm -rf build *.egg-info

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin chaoslab
USER chaoslab

EXPOSE 8000 8001 8002 8003 8004

# CMD-SHELL on purpose: Podman 4.3 splits ["CMD", ...] arguments at spaces. The port is the
# one the running service's own Settings pick (PORT, else its default), read from the
# service name in `python -m services <name>`; compose replaces this with a cheaper probe.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import importlib, urllib.request; name = open('/proc/1/cmdline', 'rb').read().split(b'\0')[3].decode(); port = importlib.import_module(f'services.{name}.settings').Settings().port; urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=2)" || exit 1

CMD ["python", "-m", "services", "gateway"]

# The load generator (compose profile "load"): the same image plus locust and what it
# needs, at the versions the tests ran (requirements/load.lock).
FROM app AS load
USER root
RUN pip install --require-hashes -r requirements/load.lock
USER chaoslab
EXPOSE 8089
HEALTHCHECK NONE
CMD ["locust", "-f", "loadtests/locustfile.py", "--host", "http://gateway:8000"]

# The last stage is what a plain `docker build .` gives: the service image, without locust.
FROM app AS service
LABEL org.opencontainers.image.title="chaoslab" \
      org.opencontainers.image.description="chaoslab services: python -m services <gateway|orders|payments|inventory|notifications>"
