"""Benchmarks: workloads, codecs side by side (ours and third-party ASN.1 libraries), timing, scaling series
and memory figures.

Why one folder: none of it is used by the product at run time; it measures the product, printing ratios
measured side by side in one run.
"""
