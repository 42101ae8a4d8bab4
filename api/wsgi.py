"""The WSGI entry point for gunicorn (`api.wsgi:app`): an app built from the environment's settings.
Built when gunicorn imports it in each worker (preload is off), never in a library import."""

from api.app import create_app

app = create_app()
