"""The web interface in Simplified Chinese: pages rendered on the server over the same services.

``install.install_web(app)`` mounts the static files and the page routers; nothing comes from a CDN.
"""
