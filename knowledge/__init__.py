"""The knowledge base, shared by the agent and the `voicedesk kb` CLI.

One job per module: ``settings`` (configuration), ``readers`` (files → text), ``chunking``
(text → chunks), ``embeddings`` and ``local_model`` (text → vectors), ``ingest`` (files →
database) and ``search`` (question → passages). SQL lives in :mod:`db.kb`.
"""
