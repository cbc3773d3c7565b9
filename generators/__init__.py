"""LLM backends (llama.cpp for GGUF on CPU, transformers for HF models and GPUs).

The bundled generator models are already resolved and verified by `pipeline.registry`;
the backends arrive with the answering capability.
"""
