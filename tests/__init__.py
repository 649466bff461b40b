"""The test suite; its folders mirror the layers (ADR 14), shared helpers sit at the top."""
