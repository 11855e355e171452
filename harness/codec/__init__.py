"""Generated codecs: a description compiled once into straight-line Python per wire format and direction.

Why a folder above :mod:`migcompat.model`: a codec is made from a description,
so it sits above the descriptions and below everything that runs states
through the wire fast (the matrix's hot loop, the benchmark, the fuzz targets).
The walker with a visitor (:func:`migcompat.model.vmstate.encode`) stays the
reference every generated codec is checked against.
"""
