FROM python:3.11-slim

# CALLBACK_HOST: inside a container the web server must listen on every interface for a reverse
# proxy (or `docker run -p 127.0.0.1:8080:8080`) to reach it; forward only /callback/ publicly.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite:////data/stembot.db \
    CALLBACK_HOST=0.0.0.0

RUN useradd --create-home --uid 10001 stembot \
    && mkdir /data && chown stembot:stembot /data

WORKDIR /app
# Exact versions with their hashes from the lock (see "Dependencies" in docs/contributing/index.md), in a layer
# of their own that a code change does not rebuild; then the project itself, adding nothing.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-cache-dir --no-deps .

USER stembot
VOLUME ["/data"]
# The bot's web server: API callbacks, /healthz and /metrics (CALLBACK_PORT).
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, sys, urllib.request; port = os.environ.get('CALLBACK_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"
CMD ["python", "-m", "bot"]
