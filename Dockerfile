FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite:////data/stembot.db

RUN useradd --create-home --uid 10001 stembot \
    && mkdir /data && chown stembot:stembot /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-cache-dir .

USER stembot
VOLUME ["/data"]
CMD ["python", "-m", "bot"]
