"""ASGI entry point for process managers: ``uvicorn api.asgi:app``; settings from the env."""

from api.app import create_app
from services.config import Settings

app = create_app(Settings())
