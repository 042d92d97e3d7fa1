# syntax=docker/dockerfile:1
#
# A small MLflow tracking server image: MLflow with the basic-auth app, and the PostgreSQL
# driver for its backend store and its user database. Pinned to the MLflow the harness is
# developed against (a server at least as new as its clients is what MLflow supports).
#
#   docker build -f docker/mlflow.Dockerfile -t harness-mlflow docker
#
# compose.yaml runs it as `mlflow server ... --app-name basic-auth`, with docker/mlflow/basic_auth.ini
# mounted read-only and named by MLFLOW_AUTH_CONFIG_PATH.
FROM python:3.11-slim-bookworm

ARG MLFLOW_VERSION=3.17.2
ARG PSYCOPG_VERSION=3.3.6

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GIT_PYTHON_REFRESH=quiet

RUN --mount=type=cache,target=/root/.cache/pip \
    pip install "mlflow[auth]==${MLFLOW_VERSION}" "psycopg[binary]==${PSYCOPG_VERSION}"

# Artifacts are written to /mlartifacts (a named volume; Docker gives a new volume the owner of
# the directory it is mounted on, so the server can write there without root).
RUN useradd --create-home --uid 1000 --user-group mlflow \
 && mkdir /mlartifacts \
 && chown mlflow:mlflow /mlartifacts
USER mlflow
WORKDIR /home/mlflow

EXPOSE 5000
ENTRYPOINT ["mlflow"]
CMD ["server", "--help"]
