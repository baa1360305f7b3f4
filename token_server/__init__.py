"""FastAPI token server: verifies Firebase sign-in and mints LiveKit tokens that dispatch the agent."""
