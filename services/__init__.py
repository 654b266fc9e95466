"""Domain and use cases of the shared materials repository.

Nothing here imports the web framework; the API and the command line call these modules.
"""
