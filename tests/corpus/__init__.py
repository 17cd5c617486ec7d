"""Generated fax corpora for the OCR tests: new document kinds on the shared generator."""
