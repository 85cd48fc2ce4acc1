"""Asynchronous extraction jobs, batches and the runners that carry them."""
