"""Adapters for the tools users already have: LangChain (`verirag.pipeline.adapters.langchain`).
The OpenAI-compatible endpoint is part of the HTTP API (`/v1/chat/completions`)."""
