"""Text extraction and indexing: the worker that drains the outbox into the search index.

Reserved for the search capability; nothing here yet.
"""
