"""Foundations: typed records, settings, the model registry, the compute thread, device and db
helpers. Everything above imports these; these import nothing of verirag's above them."""
