"""Local stand-ins for the paid AI providers (OpenAI, Deepgram, ElevenLabs).

They speak each provider's wire protocol closely enough that the real LiveKit plugins talk to
them through ``base_url``; tests drive them over a small JSON control API (see ``server.py``).
"""
