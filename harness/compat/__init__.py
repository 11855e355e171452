"""The compatibility matrix: cells, mutants, negotiation, the static checker's agreement with the dynamic
outcomes, the golden-stream gate and the results model every report is rendered from.

Why one folder: these run states saved by one release through a pairing into another and judge the outcome;
they sit above the devices and the schema they use, below the reports that render them.
"""
