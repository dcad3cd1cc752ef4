# One image for the worker and the API (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY distillguard distillguard
COPY stream stream
COPY detectors detectors
COPY api api
COPY sim sim
COPY evaluation evaluation
COPY configs configs
RUN pip install --no-cache-dir . && useradd --system distillguard
USER distillguard
ENTRYPOINT ["distillguard"]
CMD ["--help"]
