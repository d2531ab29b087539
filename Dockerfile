# Production-like image: one image, three roles (web, worker, beat) chosen by the compose command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    EISHRO_VAR_DIR=/var/lib/eishro \
    STATIC_ROOT=/app/static

WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app --shell /usr/sbin/nologin eishro \
    && mkdir -p /var/lib/eishro && chown eishro /var/lib/eishro

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic and compilemessages need settings to import, not real secrets: throwaway values here,
# the real ones come from the environment at run time.
RUN SECRET_KEY=build-only DEBUG=0 FIELD_ENCRYPTION_KEYS=$(python -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())") \
    sh -c "python manage.py compilemessages --ignore=.venv -v 0 && python manage.py collectstatic --noinput -v 0"

USER eishro
EXPOSE 8000
CMD ["gunicorn", "eishro.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", \
     "--timeout", "60", "--access-logfile", "-"]
