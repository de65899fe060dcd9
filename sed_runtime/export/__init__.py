"""Export for firmware: a C header with the frontend tables and constants (and, with a model, the model)."""

from sed_runtime.export.c_header import CHeader, frontend_header, write_frontend_export

__all__ = ["CHeader", "frontend_header", "write_frontend_export"]
