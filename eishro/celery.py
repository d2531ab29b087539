import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eishro.settings")

app = Celery("eishro")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _make_broker_folders(sender, **kwargs):
    # kombu's filesystem transport expects its folders to exist before the first message.
    from django.conf import settings

    if sender.conf.broker_url.startswith("filesystem://"):
        for key in ("data_folder_in", "control_folder"):
            os.makedirs(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key], exist_ok=True)
