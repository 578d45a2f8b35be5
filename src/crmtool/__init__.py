"""crmtool: keep a customer database clean, lawful and segmented."""

__version__ = "0.1.0"
