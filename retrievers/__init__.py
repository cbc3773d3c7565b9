"""Retrieval: loaders and chunking, encoders, the FAISS store with its SQLite metadata."""
