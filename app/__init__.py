"""docextract: schema-valid JSON from business documents, with confidence and evidence per field."""

__version__ = "0.1.0"
