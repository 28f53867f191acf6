"""apsgen: automated process supervision (OmegaPRM) data generation for math PRMs."""

__version__ = "0.1.0"
