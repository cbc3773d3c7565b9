"""Offline evaluation: datasets, suites, metrics, reports, calibration fitting, RAGAS and the
LangChain baseline. A face over `RagPipeline`, like the CLI and the API; the checks that run
on every answer live in `verirag.evaluators`."""
