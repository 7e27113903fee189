# The serving image: `python -m pipeline.serve` with one model version baked in.
#
#   make image [VERSION=v1.2.0] [MODEL_PATH=models/model.skops] [BASE_IMAGE=...]
#
# The build stage installs the locked dependencies (the project's core and the
# `serve` extra: no DVC, no plotting, no dev group) with uv, which checks every
# hash in uv.lock. The final stage
# gets that environment, the project, the model and a non-root user: no uv, no
# caches, no build tools. Layers go from the least to the most often changed
# (dependencies, code, model), so a new model version is a small layer on top.
# HEALTHCHECK needs the docker image format (`podman build --format docker`).

# Any Debian-like image with python3 and its venv module. The image tests use a
# local Debian one (containers/base-image.sh) where no registry can be reached.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# uv trusts the system's CA store (a proxy's CA, say), uses the base image's python, caches nothing.
ENV UV_SYSTEM_CERTS=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3 \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY requirements-bootstrap.txt ./
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/python -m pip install --quiet --no-cache-dir --require-hashes --no-deps -r requirements-bootstrap.txt
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --locked --no-dev --extra serve --no-install-project
# The project apart from its dependencies (on PYTHONPATH below): a code change leaves their layer alone.
COPY README.md ./
COPY src/ src/
RUN /opt/uv/bin/uv pip install --no-deps --target /opt/project .

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONPATH=/opt/project \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --gid 10001 app \
    && useradd --no-log-init --uid 10001 --gid app --no-create-home --home-dir /app --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/project /opt/project
# The model file in the build context (DVC writes it to models/model.skops) and its version.
ARG MODEL_PATH=models/model.skops
ARG MODEL_VERSION=unversioned
# Also a file beside the model. Buildah's layer cache ignores build args' values in LABEL
# and ENV (containers/buildah#5501) but not in RUN: this step makes a new version rebuild them.
RUN mkdir /app && printf '%s\n' "${MODEL_VERSION}" > /app/model.version
LABEL org.opencontainers.image.description="python -m pipeline.serve with the model baked in" \
      org.opencontainers.image.version="${MODEL_VERSION}"
ENV MODEL_VERSION=${MODEL_VERSION}
COPY ${MODEL_PATH} /app/model.skops
# The serving knobs (request limits) live in params.yaml, as everywhere else.
COPY params.yaml /app/params.yaml
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["python", "-m", "pipeline.serve", "--host", "0.0.0.0", "--port", "8000", "--model", "/app/model.skops"]
