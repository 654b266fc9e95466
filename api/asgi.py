"""ASGI entry point for process managers: ``uvicorn api.asgi:app``; settings from the env.

Also what each process of ``materials serve --workers N`` imports: it configures its logging.
"""

from api.app import create_app
from services.config import Settings
from services.logging_setup import configure_logging

settings = Settings()
configure_logging(settings)
app = create_app(settings)
