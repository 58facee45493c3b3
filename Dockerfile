# notifybot in a container: docs/deployment.md ("Docker").
#   docker build -t notifybot .
#   docker run -d --restart=always -p 8080:8080 --env-file notifybot.env \
#     -v "$PWD/subscriptions.toml:/etc/notifybot/subscriptions.toml:ro" \
#     -v notifybot-data:/var/lib/notifybot notifybot
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NOTIFYBOT_CONFIG=/etc/notifybot/subscriptions.toml \
    NOTIFYBOT_DATABASE=sqlite:////var/lib/notifybot/notifybot.db

# A system user that owns nothing but the database folder.
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin notifybot \
    && mkdir -p /etc/notifybot /var/lib/notifybot \
    && chown notifybot:notifybot /var/lib/notifybot

WORKDIR /src
COPY pyproject.toml README.md ./
COPY notifybot ./notifybot
COPY message_templates ./message_templates
RUN pip install . && rm -rf /src

WORKDIR /var/lib/notifybot
# The configuration (mount subscriptions.toml read-only) and the SQLite database.
VOLUME ["/etc/notifybot", "/var/lib/notifybot"]
USER notifybot
EXPOSE 8080

# /healthz answers 200 while storage works (503 when it does not); urlopen fails on
# anything but 2xx. The image has no curl: Python is there anyway.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# SIGTERM: stop accepting, let sends in flight finish (10 s), return the rest to pending.
STOPSIGNAL SIGTERM
CMD ["notifybot", "serve", "--bind", "0.0.0.0:8080"]
