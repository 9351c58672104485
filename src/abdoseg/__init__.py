"""abdoseg: liver, kidney and spleen segmentation in abdominal CT with a VNet, as a reproducible pipeline."""

__version__ = "0.1.0"
