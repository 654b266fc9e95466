"""HTTP API of the materials repository: FastAPI app, routes, schemas and dependencies."""
