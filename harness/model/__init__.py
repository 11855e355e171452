"""Descriptions and states: the VMState-like description of a device, the walker that drives a visitor over it,
field layouts, projection between releases and the hypothesis strategies that generate states.

Why together: everything here is about what a device's state *is*, independent of any wire format; the wire
(:mod:`migcompat.wire`) sits below and knows nothing of descriptions.
"""
